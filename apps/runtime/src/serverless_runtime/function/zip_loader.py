"""Loads a function from a zip package: checks every member, extracts, imports the handler."""

from __future__ import annotations

import importlib
import importlib.util
import io
import re
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from types import ModuleType

from serverless_runtime.failures import FailureKind
from serverless_runtime.function.handler_ref import HandlerRef
from serverless_runtime.function.loader import (
    MODULE_NAME,
    FunctionLoadError,
    Handler,
    LoadedFunction,
    digest,
    import_failure,
    read_source,
    resolve_handler,
)

MAX_FILES = 1000
MAX_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_ALLOWED_TYPES = (0, stat.S_IFREG, stat.S_IFDIR)  # 0: archivers that record no Unix mode
# What zipfile raises on damaged bytes; found by feeding it truncated and corrupted archives.
_DAMAGED = (zipfile.BadZipFile, zlib.error, ValueError, NotImplementedError, EOFError, OSError)

# The extraction dir whose modules are loaded now; emptied out when a newer version takes over.
_active: list[Path] = []


def load_zip(zip_path: Path, ref: HandlerRef, workdir: Path) -> LoadedFunction:
    module_name, attr = ref.module or MODULE_NAME, ref.function
    data, mtime = read_source(zip_path, "zip")
    # Reading the bytes once means the digest describes exactly what gets extracted.
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGED as exc:
        raise FunctionLoadError(
            FailureKind.BAD_PACKAGE, f"{zip_path} is not a readable zip archive: {exc}"
        ) from exc
    with archive:
        members = _checked_members(zip_path, archive)
        root = _fresh_dir(zip_path, workdir)
        try:
            _extract(zip_path, archive, members, root)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
    handler = _import_handler(zip_path, root, module_name, attr)
    return LoadedFunction(handler=handler, path=zip_path, digest=digest(data), mtime=mtime)


def _fresh_dir(zip_path: Path, workdir: Path) -> Path:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="function-", dir=workdir)).absolute()
    except OSError as exc:
        raise FunctionLoadError(
            FailureKind.WORKDIR_UNAVAILABLE,
            f"cannot create a directory in {workdir} to extract {zip_path}: {exc}",
        ) from exc


def _checked_members(zip_path: Path, archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Every member, once each has passed the path, type, count and declared-size rules."""
    members = archive.infolist()
    if len(members) > MAX_FILES:
        raise FunctionLoadError(
            FailureKind.UNSAFE_PACKAGE,
            f"{zip_path}: member {members[MAX_FILES].filename!r} is past the limit of "
            f"{MAX_FILES} entries ({len(members)} in the archive)",
        )
    declared = 0
    for info in members:
        _check_member(zip_path, info)
        declared += info.file_size
        if declared > MAX_BYTES:
            raise FunctionLoadError(
                FailureKind.UNSAFE_PACKAGE,
                f"{zip_path}: member {info.filename!r} declares {info.file_size} bytes, taking "
                f"the uncompressed total past the limit of {MAX_BYTES} bytes",
            )
    return members


def _check_member(zip_path: Path, info: zipfile.ZipInfo) -> None:
    name, mode = info.filename, info.external_attr >> 16
    # Backslashes count as separators too: other systems' archivers write them.
    rule = None
    if not name:
        rule = "an empty name is not allowed"
    elif name.startswith(("/", "\\")):
        rule = "absolute paths are not allowed"
    elif _DRIVE.match(name):
        rule = "drive-letter paths are not allowed"
    elif ".." in re.split(r"[/\\]", name):
        rule = "'..' path components are not allowed"
    elif stat.S_ISLNK(mode):
        rule = "symbolic links are not allowed"
    elif stat.S_IFMT(mode) not in _ALLOWED_TYPES:
        rule = "only regular files and directories are allowed"
    if rule:
        raise FunctionLoadError(FailureKind.UNSAFE_PACKAGE, f"{zip_path}: member {name!r}: {rule}")
    if info.flag_bits & 0x1:
        raise FunctionLoadError(
            FailureKind.BAD_PACKAGE,
            f"{zip_path}: member {name!r}: encrypted members are not supported",
        )


def _extract(
    zip_path: Path, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], root: Path
) -> None:
    written = 0
    for info in members:
        target = root / info.filename
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            # "x": a name that appears twice is refused rather than silently overwritten.
            with archive.open(info) as source, target.open("xb") as sink:
                while chunk := source.read(_CHUNK):
                    written += len(chunk)
                    # Headers may understate sizes, so the bytes really written are bounded too.
                    if written > MAX_BYTES:
                        raise FunctionLoadError(
                            FailureKind.UNSAFE_PACKAGE,
                            f"{zip_path}: member {info.filename!r} takes the uncompressed bytes "
                            f"past the limit of {MAX_BYTES} bytes while extracting",
                        )
                    sink.write(chunk)
        except _DAMAGED as exc:
            # A CRC mismatch (BadZipFile) is how a header that understates a size shows up.
            raise FunctionLoadError(
                FailureKind.BAD_PACKAGE,
                f"{zip_path}: member {info.filename!r} cannot be extracted: {exc}",
            ) from exc


def _import_handler(zip_path: Path, root: Path, module_name: str, attr: str) -> Handler:
    """Import module_name from root in place of the earlier extraction; roll back on failure."""
    previous = list(_active)
    stale = _unload(previous)
    for folder in previous:
        _remove_from_path(folder)
    # Last on the path: a module the package ships never shadows one the runtime imports, even
    # lazily (prometheus_client at the first scrape).
    sys.path.append(str(root))
    importlib.invalidate_caches()
    try:
        module = _import(zip_path, root, module_name)
        handler = resolve_handler(module, attr, f"{zip_path}:{module_name}")
    except BaseException:
        # The previous version keeps running with its own modules and files.
        _unload([root])
        _remove_from_path(root)
        sys.modules.update(stale)
        sys.path.extend(str(folder) for folder in previous)
        shutil.rmtree(root, ignore_errors=True)
        raise
    _active[:] = [root]
    for folder in previous:
        shutil.rmtree(folder, ignore_errors=True)
    return handler


def _import(zip_path: Path, root: Path, module_name: str) -> ModuleType:
    top = module_name.partition(".")[0]
    clash = _outside_module(top, root)
    if clash is not None:
        # An import would quietly return that module instead of the package's.
        raise FunctionLoadError(
            FailureKind.UNSAFE_PACKAGE,
            f"{zip_path}: package {top!r} has the name of a module the runtime already "
            f"imported or can import ({clash}); rename the package",
        )
    try:
        return importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # a module body may raise anything, exit included
        raise import_failure(exc, zip_path, module_name, root) from exc


def _outside_module(name: str, root: Path) -> str | None:
    """Where `name` comes from when that is not the package at root; None if it is the package's."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return getattr(loaded, "__file__", None) or "built in"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None  # the import itself will report what is wrong
    if spec is None:
        return None
    places = [spec.origin, *(spec.submodule_search_locations or [])]
    inside = any(isinstance(p, str) and Path(p).is_relative_to(root) for p in places)
    return None if inside else spec.origin or "a namespace package"


def _unload(folders: list[Path]) -> dict[str, ModuleType]:
    dropped: dict[str, ModuleType] = {}
    for name, module in list(sys.modules.items()):
        if any(_loaded_from(module, folder) for folder in folders):
            dropped[name] = sys.modules.pop(name)
    return dropped


def _loaded_from(module: ModuleType, folder: Path) -> bool:
    # Namespace packages (no __init__.py) have no __file__, only __path__.
    places: list[object] = [getattr(module, "__file__", None)]
    search = getattr(module, "__path__", None)
    if search is not None and not isinstance(search, str):
        places.extend(search)
    return any(isinstance(p, str) and Path(p).is_relative_to(folder) for p in places)


def _remove_from_path(folder: Path) -> None:
    entry = str(folder)
    while entry in sys.path:
        sys.path.remove(entry)
    sys.path_importer_cache.pop(entry, None)
