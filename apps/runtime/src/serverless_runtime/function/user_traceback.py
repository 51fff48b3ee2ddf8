"""A user failure as its author needs it: the exception as text, and the traceback with the
function's frames, not the runtime's.

The loop calls the handler (and imports the function) from its own frames; those are noise to
whoever wrote the function, so they are left out unless LOG_LEVEL=DEBUG asks for everything.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from functools import cache
from pathlib import Path

# The runtime's own package: its frames and its exception types.
_PACKAGE = __name__.partition(".")[0]
_real = cache(os.path.realpath)  # a file is resolved once: realpath asks the file system


def describe(exc: BaseException) -> str:
    """`TypeName: text`; an exception whose str() raises is named, never raised again."""
    name = type(exc).__name__
    try:
        text = str(exc)
    except BaseException as failure:  # noqa: BLE001 - a function's __str__ may raise anything
        text = f"<str() raised {type(failure).__name__}>"
    return f"{name}: {text}"


def user_traceback(exc: BaseException, full: bool = False) -> str:
    """The traceback of exc with only the user's frames ("" when none is the user's). An exception
    of the runtime's raised `from` the user's (FunctionLoadError, ReplayError) is shown as that
    cause; a SyntaxError keeps its file, line and caret. `full`: as Python prints it."""
    if full:
        return "".join(traceback.format_exception(exc))
    while type(exc).__module__.partition(".")[0] == _PACKAGE and exc.__cause__ is not None:
        exc = exc.__cause__
    shown = traceback.TracebackException.from_exception(exc)
    if not _trim(shown):
        return ""
    return "".join(shown.format())


def _trim(shown: traceback.TracebackException, seen: set[int] | None = None) -> bool:
    """Keep only user frames in shown and its chain; True when any user code is left to show."""
    seen = set() if seen is None else seen
    if id(shown) in seen:
        return False
    seen.add(id(shown))
    frames: list[traceback.FrameSummary] = []
    for frame in shown.stack:
        # Frames below the first user frame are what the user called (the standard library
        # included); above it, only how the runtime got there.
        if _is_runtime(frame.filename) or (not frames and not _is_user(frame.filename)):
            continue
        frames.append(frame)
    shown.stack = traceback.StackSummary.from_list(frames)
    found = bool(frames) or (shown.exc_type is not None and issubclass(shown.exc_type, SyntaxError))
    # A context hidden by `raise … from None` is not printed: it cannot be what is shown.
    context = None if shown.__suppress_context__ else shown.__context__
    for linked in (shown.__cause__, context, *(shown.exceptions or ())):
        if linked is not None and _trim(linked, seen):
            found = True
    return found


def _is_runtime(filename: str) -> bool:
    """A frame of the runtime's package, or of the import machinery it loads functions with."""
    return filename.startswith("<frozen importlib") or _under(filename, _roots()[0])


def _is_user(filename: str) -> bool:
    """Neither the runtime's nor the standard library's: the function, its package or a library."""
    _, stdlib, installed = _roots()
    if filename.startswith("<frozen "):
        return False
    if _under(filename, stdlib) and not _under(filename, installed):
        return False
    return not _is_runtime(filename)


@cache
def _roots() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The runtime's folder; the standard library's; where installed packages live."""
    paths = sysconfig.get_paths()
    package = (_real(str(Path(__file__).parents[1])),)
    stdlib = tuple({_real(paths[name]) for name in ("stdlib", "platstdlib")})
    installed = tuple({_real(paths[name]) for name in ("purelib", "platlib")})
    return package, stdlib, installed


def _under(filename: str, roots: tuple[str, ...]) -> bool:
    real = _real(filename)
    return any(real == root or real.startswith(root + os.sep) for root in roots)
