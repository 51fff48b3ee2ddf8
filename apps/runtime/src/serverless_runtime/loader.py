"""Turns a function file into a checked handler, with a distinct error for each way it fails."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[Any, Any], Any]

MODULE_NAME = "usermodule"


class FunctionLoadError(Exception):
    """The function could not be loaded; the message names the path and the cause."""

    kind = "load-error"


class FunctionMissing(FunctionLoadError):
    """The function file does not exist or cannot be read."""


class FunctionSyntaxError(FunctionLoadError):
    """The function file is not valid Python."""


class FunctionImportError(FunctionLoadError):
    """Running the module raised, e.g. a dependency failed to import."""


class HandlerMissing(FunctionLoadError):
    """The module has no attribute of the handler's name."""


class HandlerNotCallable(FunctionLoadError):
    """The handler attribute exists but cannot be called."""


@dataclass(frozen=True, slots=True)
class LoadedFunction:
    """A handler ready to call, with what identifies the source it came from."""

    handler: Handler
    path: Path
    digest: str
    mtime: float

    @property
    def getmtime(self) -> str:
        """The source's modification time as the course runtime formats it."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.mtime))


def source_digest(path: Path) -> str:
    """A content digest of the function source, to notice a changed file."""
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def load_file(path: Path, attr: str = "handler") -> LoadedFunction:
    """Import a single-file function as the module `usermodule` and return its handler."""
    try:
        source = path.read_bytes()
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise FunctionMissing(f"cannot read function file {path}: {exc.strerror or exc}") from exc
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        raise FunctionSyntaxError(f"syntax error in {path} at {where}: {exc.msg}") from exc
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    assert spec is not None  # a file location always yields a spec
    module = importlib.util.module_from_spec(spec)
    _execute(module, code, path)
    handler = resolve_handler(module, attr, str(path))
    digest = hashlib.blake2b(source, digest_size=16).hexdigest()
    return LoadedFunction(handler=handler, path=path, digest=digest, mtime=mtime)


def _execute(module: ModuleType, code: Any, path: Path) -> None:
    # Modules next to the function file stay importable, as they were under the course image;
    # last on the path, so that none of them shadows a module the runtime imports.
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    previous = sys.modules.get(module.__name__)
    sys.modules[module.__name__] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the user's function module is the job
    except ImportError as exc:
        _restore(module.__name__, previous)
        missing = f" (module {exc.name!r})" if exc.name else ""
        raise FunctionImportError(f"{path} failed to import a dependency{missing}: {exc}") from exc
    except (Exception, SystemExit) as exc:  # a module body may raise anything, exit included
        _restore(module.__name__, previous)
        raise FunctionImportError(
            f"{path} raised while being imported: {type(exc).__name__}: {exc}"
        ) from exc


def _restore(name: str, previous: ModuleType | None) -> None:
    if previous is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = previous


def resolve_handler(module: ModuleType, attr: str, where: str) -> Handler:
    """Return module.attr if it is callable, else a distinct, clear error."""
    try:
        handler = getattr(module, attr)
    except AttributeError:
        raise HandlerMissing(f"{where} defines no {attr!r} function") from None
    if not callable(handler):
        raise HandlerNotCallable(
            f"{where}: {attr!r} is a {type(handler).__name__}, not a function"
        ) from None
    return handler  # type: ignore[no-any-return]


class FunctionSource:
    """Watches one function file (or zip) and reloads it when its content changes."""

    def __init__(self, path: Path, load: Callable[[Path], LoadedFunction] = load_file) -> None:
        self.path = path
        self._load = load
        self.current: LoadedFunction | None = None
        self._seen: tuple[float, int, int] | None = None
        self._failed_digest: str | None = None
        self.loading_digest: str | None = None  # the version being imported, while it is

    def refuse(self, digest: str) -> None:
        """Never import this version (it hung while loading before); a changed file loads."""
        self._failed_digest = digest

    def _signature(self) -> tuple[float, int, int] | None:
        try:
            # stat follows links, so a ConfigMap's `..data` swap shows up as a new inode.
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size, st.st_ino)

    def refresh(self) -> bool:
        """Load the file if it changed; True when a new version took over.

        Raises FunctionLoadError once per broken version; the running version stays.
        """
        signature = self._signature()
        if signature is not None and signature == self._seen:
            return False
        self._seen = signature
        if signature is None:
            if self.current is not None:
                return False  # a vanished file keeps the loaded version running
            raise FunctionMissing(f"function file {self.path} does not exist")
        digest = source_digest(self.path)
        if self.current is not None and digest == self.current.digest:
            return False
        if digest == self._failed_digest:
            return False
        self.loading_digest = digest
        try:
            self.current = self._load(self.path)
        except FunctionLoadError:
            self._failed_digest = digest
            raise
        finally:
            self.loading_digest = None
        self._failed_digest = None
        return True
