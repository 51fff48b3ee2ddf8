"""Turns a function file into a checked handler, with a distinct error for each way it fails."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from serverless_runtime.failures import FailureKind
from serverless_runtime.registry import MAX_FAILURE_MESSAGE, LoadFailure

Handler = Callable[[Any, Any], Any]

MODULE_NAME = "usermodule"


class FunctionLoadError(Exception):
    """The function could not be loaded: `kind` says which fault (failures.py says what each
    means), the message names the path and the cause."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def import_failure(
    exc: BaseException, source: Path, module_name: str, root: Path | None = None
) -> FunctionLoadError:
    """The typed error for what importing `module_name` from `source` raised. Shared by the file and
    zip loaders; `root` is where a zip was extracted (None for a file)."""
    where = str(source) if root is None else f"{source}: {module_name}"
    if isinstance(exc, SyntaxError):
        line = f"line {exc.lineno}" if exc.lineno else "unknown line"
        inner = f"{source} member {_inner_path(root, exc.filename)}" if root else None
        file = inner or exc.filename or str(source)
        return FunctionLoadError(
            FailureKind.SYNTAX_ERROR, f"syntax error in {file} at {line}: {exc.msg}"
        )
    if isinstance(exc, ImportError) and exc.name is not None:
        # As uvicorn's importer: the name says whether the module itself or a dependency is
        # missing; only the first is a wrong FUNCTION_HANDLER.
        if root is not None and (exc.name == module_name or module_name.startswith(f"{exc.name}.")):
            return FunctionLoadError(
                FailureKind.MODULE_NOT_FOUND,
                f"{source} contains no module {exc.name!r} (handler module {module_name!r})",
            )
        return FunctionLoadError(
            FailureKind.DEPENDENCY_MISSING,
            f"{where} failed to import a dependency (module {exc.name!r}): {exc}",
        )
    if isinstance(exc, ImportError):
        return FunctionLoadError(
            FailureKind.IMPORT_ERROR, f"{where} failed to import a dependency: {exc}"
        )
    return FunctionLoadError(
        FailureKind.IMPORT_ERROR,
        f"{where} raised while being imported: {type(exc).__name__}: {exc}",
    )


def _inner_path(root: Path, filename: str | None) -> str:
    if filename is None:
        return "?"
    path = Path(filename)
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else filename


@dataclass(frozen=True, slots=True)
class LoadedFunction:
    """A handler ready to call, with what identifies the source it came from."""

    handler: Handler
    path: Path
    digest: str
    mtime: float

    @property
    def mtime_text(self) -> str:
        """The source's modification time as text, as the course's `context.function_getmtime`."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.mtime))


def digest(data: bytes) -> str:
    """A content digest: tells a changed function source, or an input not yet processed."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_source(path: Path, what: str) -> tuple[bytes, float]:
    """The bytes and modification time of the function `what` (file or zip) at path."""
    try:
        return path.read_bytes(), path.stat().st_mtime
    except OSError as exc:
        message = f"cannot read function {what} {path}: {exc.strerror or exc}"
        raise FunctionLoadError(FailureKind.FUNCTION_MISSING, message) from exc


def load_file(path: Path, attr: str = "handler") -> LoadedFunction:
    source, mtime = read_source(path, "file")
    try:
        # dont_inherit: only the file's own `from __future__` imports apply, never this module's
        # (its postponed annotations would let an annotation name an unimported type).
        code = compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise import_failure(exc, path, MODULE_NAME) from exc
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    assert spec is not None  # a file location always yields a spec
    module = importlib.util.module_from_spec(spec)
    _execute(module, code, path)
    handler = resolve_handler(module, attr, str(path))
    return LoadedFunction(handler=handler, path=path, digest=digest(source), mtime=mtime)


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
    except (Exception, SystemExit) as exc:  # a module body may raise anything, exit included
        if previous is None:
            sys.modules.pop(module.__name__, None)
        else:
            sys.modules[module.__name__] = previous
        raise import_failure(exc, path, module.__name__) from exc


def resolve_handler(module: ModuleType, attr: str, where: str) -> Handler:
    try:
        handler = getattr(module, attr)
    except AttributeError:
        raise FunctionLoadError(
            FailureKind.HANDLER_NOT_FOUND, f"{where} defines no {attr!r} function"
        ) from None
    if not callable(handler):
        raise FunctionLoadError(
            FailureKind.HANDLER_NOT_CALLABLE,
            f"{where}: {attr!r} is a {type(handler).__name__}, not a function",
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
        # The newest version failed to load (the previous one, if any, keeps running); None
        # once a version loads, or the file is back to the running version.
        self.failed: LoadFailure | None = None

    def refuse(self, digest: str) -> None:
        """Never import this version (it hung while loading before); a changed file loads."""
        self._failed_digest = digest

    def refresh(self) -> bool:
        """Load the file if it changed; True when a new version took over. Raises FunctionLoadError
        once per broken version; the running version stays."""
        try:
            # stat follows links, so a ConfigMap's `..data` swap shows up as a new inode.
            st = self.path.stat()
            signature: tuple[float, int, int] | None = (st.st_mtime, st.st_size, st.st_ino)
        except OSError:
            signature = None
        if signature is not None and signature == self._seen:
            return False
        self._seen = signature
        if signature is None:
            if self.current is not None:
                return False  # a vanished file keeps the loaded version running
            raise FunctionLoadError(
                FailureKind.FUNCTION_MISSING, f"function file {self.path} does not exist"
            )
        version = digest(self.path.read_bytes())
        if self.current is not None and version == self.current.digest:
            self.failed = None  # reverted to the version running
            return False
        if version == self._failed_digest:
            return False
        self.loading_digest = version
        try:
            self.current = self._load(self.path)
        except FunctionLoadError as exc:
            self._failed_digest = version
            self.failed = LoadFailure(
                mtime=datetime.fromtimestamp(signature[0], UTC).isoformat(timespec="seconds"),
                digest=version,
                kind=exc.kind,
                message=str(exc)[:MAX_FAILURE_MESSAGE],
                running=self.current is not None,
            )
            raise
        finally:
            self.loading_digest = None
        self._failed_digest = None
        self.failed = None
        return True
