"""FUNCTION_HANDLER parsed once: which module of a zip package, and which function in it."""

from __future__ import annotations

from dataclasses import dataclass

FORMS = "package.module:function, package.module, or :function"


@dataclass(frozen=True, slots=True)
class HandlerRef:
    """`package.module:function`; no module means the function file (or a zip's `usermodule`)."""

    module: str | None = None
    function: str = "handler"

    def __post_init__(self) -> None:
        if self.module is not None and not all(p.isidentifier() for p in self.module.split(".")):
            raise ValueError(f"{self.module!r} is not a dotted module name")
        if not self.function.isidentifier():
            raise ValueError(f"{self.function!r} is not a function name")

    @classmethod
    def parse(cls, raw: str) -> HandlerRef:
        """Read `package.module:function`, `package.module` or `:function`; raise ValueError."""
        module, colon, function = raw.strip().partition(":")
        if colon and not function:
            raise ValueError(f"{raw!r} names no function after ':'")
        return cls(module or None, function or "handler") if colon else cls(module)

    def __str__(self) -> str:
        return f"{self.module or ''}:{self.function}"
