"""An exception raised by user code, as text, whatever its own methods do."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    """`TypeName: text`; an exception whose str() raises is named, never raised again."""
    name = type(exc).__name__
    try:
        text = str(exc)
    except BaseException as failure:  # noqa: BLE001 - a function's __str__ may raise anything
        text = f"<str() raised {type(failure).__name__}>"
    return f"{name}: {text}"
