"""Zip function packages load and reload like single files, and unsafe archives never land."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import re
import stat
import struct
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverless_runtime.failures import FailureKind
from serverless_runtime.function import zip_loader
from serverless_runtime.function.handler_ref import HandlerRef
from serverless_runtime.function.loader import (
    FunctionLoadError,
)
from serverless_runtime.function.zip_loader import (
    load_zip,
)

from tests.unit.function.load_errors import load_fails

# A package spread over modules: an absolute and a relative import, and a call-time import.
PACKAGE_V1 = {
    "pkg/__init__.py": "VERSION = 1\n",
    "pkg/units.py": "PERCENT = 100.0\n",
    "pkg/helpers.py": "CALLS = []\n\ndef share(part, whole):\n    return part / whole\n",
    "pkg/main.py": (
        "import pkg.helpers\n"
        "from . import VERSION\n"
        "from .units import PERCENT\n"
        "\n"
        "def handler(input, context):\n"
        "    share = pkg.helpers.share(input['part'], input['whole'])\n"
        "    return {'percent': share * PERCENT, 'version': VERSION}\n"
        "\n"
        "def late(input, context):\n"
        "    from pkg import helpers\n"
        "    helpers.CALLS.append(input)\n"
        "    return {'share': helpers.share(1, 4), 'calls': len(helpers.CALLS)}\n"
    ),
}
PACKAGE_V2 = {
    **PACKAGE_V1,
    "pkg/__init__.py": "VERSION = 2\n",
    "pkg/helpers.py": "def share(part, whole):\n    return part / whole / 2\n",
}


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts without the package names it uses and leaves none behind."""
    for name in ("pkg", "usermodule", "nspkg"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    saved_path = list(sys.path)
    yield
    sys.path[:] = saved_path
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if isinstance(origin, str) and Path(origin).is_relative_to(tmp_path):
            del sys.modules[name]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An extraction workdir two levels down, so an escaping member would land in tmp_path."""
    path = tmp_path / "work" / "functions"
    path.mkdir(parents=True)
    return path


def make_zip(path: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write a zip holding `files` (member name -> content)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def tree(root: Path) -> set[str]:
    """Every path under root, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def extraction_dirs(workdir: Path) -> list[Path]:
    return sorted(p for p in workdir.iterdir() if p.is_dir())


def patch_sizes(data: bytes, file_size: int) -> bytes:
    """Rewrite the uncompressed size recorded for the (single) member in both headers."""
    raw = bytearray(data)
    local = raw.index(b"PK\x03\x04")
    struct.pack_into("<I", raw, local + 22, file_size)
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, file_size)
    return bytes(raw)


def stored_zip(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def damaged(kind: str) -> bytes:
    """A one-member zip broken in one way that zipfile reports with its own exception type."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("usermodule.py", "def handler(i, c):\n    return {}\n" * 10)
    raw = bytearray(buffer.getvalue())
    central = raw.index(b"PK\x01\x02")
    if kind == "future-version":  # NotImplementedError
        raw[central + 6] = 200
    elif kind == "bad-utf8-name":  # UnicodeDecodeError
        struct.pack_into("<H", raw, central + 8, 0x800)
        raw[central + 46] = 0xFF
    elif kind == "directory-offset":  # ValueError: negative seek, when opening the member
        struct.pack_into("<I", raw, raw.index(b"PK\x05\x06") + 16, 1 << 30)
    elif kind == "deflate-data":  # zlib.error: a reserved block type
        raw[30 + len("usermodule.py")] = 0xFF
    return bytes(raw)


def special_entry(name: str, mode: int, content: str = "") -> bytes:
    """A zip with one entry of the given Unix file type, as `zip --symlinks` records it."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits are meaningful
    info.external_attr = mode << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, content)
    return buffer.getvalue()


def test_load_zip_multi_module_package_returns_what_modules_compute(
    tmp_path: Path, workdir: Path
) -> None:
    zip_path = make_zip(tmp_path / "function.zip", PACKAGE_V1)
    loaded = load_zip(zip_path, HandlerRef.parse("pkg.main"), workdir)
    assert loaded.handler({"part": 1, "whole": 4}, None) == {"percent": 25.0, "version": 1}
    assert loaded.path == zip_path
    assert loaded.digest == hashlib.blake2b(zip_path.read_bytes(), digest_size=16).hexdigest()
    assert loaded.mtime == zip_path.stat().st_mtime


def test_load_zip_named_function_is_used(tmp_path: Path, workdir: Path) -> None:
    zip_path = make_zip(tmp_path / "function.zip", PACKAGE_V1)
    loaded = load_zip(zip_path, HandlerRef.parse("pkg.main:late"), workdir)
    assert loaded.handler({}, None) == {"share": 0.25, "calls": 1}


def test_load_zip_without_handler_ref_loads_usermodule_handler(
    tmp_path: Path, workdir: Path
) -> None:
    files = {
        "usermodule.py": "from lib.names import greet\n\ndef handler(i, c):\n    return greet()\n",
        "lib/__init__.py": "",
        "lib/names.py": "def greet():\n    return {'hello': 'zip'}\n",
    }
    loaded = load_zip(make_zip(tmp_path / "function.zip", files), HandlerRef(), workdir)
    assert loaded.handler({}, None) == {"hello": "zip"}


def test_load_zip_reload_runs_new_code_without_stale_modules(tmp_path: Path, workdir: Path) -> None:
    first = load_zip(
        make_zip(tmp_path / "v1.zip", PACKAGE_V1), HandlerRef.parse("pkg.main"), workdir
    )
    [first_dir] = extraction_dirs(workdir)
    second = load_zip(
        make_zip(tmp_path / "v2.zip", PACKAGE_V2), HandlerRef.parse("pkg.main"), workdir
    )
    assert second.handler({"part": 1, "whole": 4}, None) == {"percent": 12.5, "version": 2}
    assert second.digest != first.digest
    # The old version's files go once the new one took over, and it is off the import path.
    [second_dir] = extraction_dirs(workdir)
    assert second_dir != first_dir
    assert not first_dir.exists()
    assert str(first_dir) not in sys.path
    assert Path(sys.modules["pkg.helpers"].__file__ or "").is_relative_to(second_dir)


def test_load_zip_reload_of_namespace_package_runs_new_code(tmp_path: Path, workdir: Path) -> None:
    # No __init__.py: the package is only known by its __path__, not a __file__.
    def version(n: int) -> dict[str, str]:
        return {
            "nspkg/main.py": "from nspkg.data import N\ndef handler(i, c):\n    return {'n': N}\n",
            "nspkg/data.py": f"N = {n}\n",
        }

    load_zip(make_zip(tmp_path / "v1.zip", version(1)), HandlerRef.parse("nspkg.main"), workdir)
    loaded = load_zip(
        make_zip(tmp_path / "v2.zip", version(2)), HandlerRef.parse("nspkg.main"), workdir
    )
    assert loaded.handler({}, None) == {"n": 2}


def test_load_zip_failed_reload_keeps_previous_version_working(
    tmp_path: Path, workdir: Path
) -> None:
    running = load_zip(
        make_zip(tmp_path / "v1.zip", PACKAGE_V1), HandlerRef.parse("pkg.main:late"), workdir
    )
    assert running.handler({}, None) == {"share": 0.25, "calls": 1}
    broken = {**PACKAGE_V2, "pkg/helpers.py": "raise RuntimeError('half-written')\n"}
    with load_fails(FailureKind.IMPORT_ERROR, match="half-written") as caught:
        load_zip(make_zip(tmp_path / "v2.zip", broken), HandlerRef.parse("pkg.main:late"), workdir)
    assert caught.value.kind == "import-error"
    # The running handler imports at call time; it still gets its own modules, state and all.
    assert running.handler({}, None) == {"share": 0.25, "calls": 2}
    assert len(extraction_dirs(workdir)) == 1
    fixed = load_zip(
        make_zip(tmp_path / "v3.zip", PACKAGE_V2), HandlerRef.parse("pkg.main"), workdir
    )
    assert fixed.handler({"part": 1, "whole": 4}, None)["version"] == 2


@pytest.mark.parametrize(
    ("member", "rule"),
    [
        ("../evil.py", "'..' path components"),
        ("pkg/../../evil.py", "'..' path components"),
        ("..\\evil.py", "'..' path components"),
        ("/etc/evil.py", "absolute paths"),
        ("\\evil.py", "absolute paths"),
        ("C:/evil.py", "drive-letter paths"),
    ],
)
def test_load_zip_rejects_escaping_member_before_writing(
    tmp_path: Path, workdir: Path, member: str, rule: str
) -> None:
    zip_path = make_zip(tmp_path / "function.zip", {"usermodule.py": "", member: "pwned = 1\n"})
    before = tree(tmp_path)
    with load_fails(FailureKind.UNSAFE_PACKAGE) as caught:
        load_zip(zip_path, HandlerRef(), workdir)
    assert caught.value.kind == "unsafe-package"
    message = str(caught.value)
    assert str(zip_path) in message
    assert repr(member) in message
    assert rule in message
    assert tree(tmp_path) == before


def test_load_zip_rejects_symlink_member(tmp_path: Path, workdir: Path) -> None:
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(special_entry("pkg/link.py", stat.S_IFLNK | 0o777, "/etc/passwd"))
    before = tree(tmp_path)
    with load_fails(
        FailureKind.UNSAFE_PACKAGE, match=r"'pkg/link\.py': symbolic links are not allowed"
    ):
        load_zip(zip_path, HandlerRef.parse("pkg.link"), workdir)
    assert tree(tmp_path) == before


def test_load_zip_rejects_device_or_fifo_member(tmp_path: Path, workdir: Path) -> None:
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(special_entry("pkg/pipe", stat.S_IFIFO | 0o644))
    before = tree(tmp_path)
    with load_fails(
        FailureKind.UNSAFE_PACKAGE, match="'pkg/pipe': only regular files and directories"
    ):
        load_zip(zip_path, HandlerRef.parse("pkg.main"), workdir)
    assert tree(tmp_path) == before


def test_load_zip_rejects_too_many_files(tmp_path: Path, workdir: Path) -> None:
    files = {f"pkg/m{n}.py": "" for n in range(zip_loader.MAX_FILES + 1)}
    zip_path = make_zip(tmp_path / "function.zip", files)
    before = tree(tmp_path)
    with load_fails(FailureKind.UNSAFE_PACKAGE) as caught:
        load_zip(zip_path, HandlerRef.parse("pkg.m0"), workdir)
    assert f"'pkg/m{zip_loader.MAX_FILES}.py'" in str(caught.value)
    assert f"limit of {zip_loader.MAX_FILES} entries" in str(caught.value)
    assert tree(tmp_path) == before


def test_load_zip_rejects_real_bytes_over_bound(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zip_loader, "MAX_BYTES", 1000)
    # Each data member fits under the bound; together they do not.
    files: dict[str, str | bytes] = {
        "usermodule.py": "def handler(i, c):\n    return {}\n",
        "data/a.bin": b"a" * 600,
        "data/b.bin": b"b" * 600,
    }
    zip_path = make_zip(tmp_path / "function.zip", files)
    before = tree(tmp_path)
    with load_fails(FailureKind.UNSAFE_PACKAGE) as caught:
        load_zip(zip_path, HandlerRef(), workdir)
    assert "'data/b.bin'" in str(caught.value)
    assert "limit of 1000 bytes" in str(caught.value)
    assert tree(tmp_path) == before


def test_load_zip_rejects_member_declaring_size_over_bound(tmp_path: Path, workdir: Path) -> None:
    # Small on disk, but the headers claim one byte more than the default bound.
    data = patch_sizes(stored_zip("usermodule.py", b"x = 1\n"), zip_loader.MAX_BYTES + 1)
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(data)
    before = tree(tmp_path)
    with load_fails(FailureKind.UNSAFE_PACKAGE, match=r"'usermodule\.py' declares \d+ bytes"):
        load_zip(zip_path, HandlerRef(), workdir)
    assert tree(tmp_path) == before


def test_load_zip_rejects_member_larger_than_its_header_says(tmp_path: Path, workdir: Path) -> None:
    # The headers understate the size; the data behind them does not match and is refused.
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(patch_sizes(stored_zip("usermodule.py", b"#" * 5000), 100))
    before = tree(tmp_path)
    with load_fails(FailureKind.BAD_PACKAGE, match=r"'usermodule\.py' cannot be extracted"):
        load_zip(zip_path, HandlerRef(), workdir)
    assert tree(tmp_path) == before


def test_load_zip_stops_writing_once_real_bytes_pass_bound(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An archive reader that trusted the data over the header would hand out more bytes than
    # declared; the bytes written are bounded on their own, not only the headers.
    monkeypatch.setattr(zip_loader, "MAX_BYTES", 1000)
    zip_path = make_zip(tmp_path / "function.zip", {"usermodule.py": "x = 1\n"})
    real_open = zipfile.ZipFile.open

    def oversize_open(self: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
        real_open(self, name, *args, **kwargs).close()
        return io.BytesIO(b"#" * 200_000)

    monkeypatch.setattr(zipfile.ZipFile, "open", oversize_open)
    before = tree(tmp_path)
    with load_fails(
        FailureKind.UNSAFE_PACKAGE, match="past the limit of 1000 bytes while extracting"
    ):
        load_zip(zip_path, HandlerRef(), workdir)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("content", [b"def handler(i, c):\n    return {}\n", b""])
def test_load_zip_rejects_file_that_is_not_a_zip(
    tmp_path: Path, workdir: Path, content: bytes
) -> None:
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(content)
    before = tree(tmp_path)
    with load_fails(FailureKind.BAD_PACKAGE, match="is not a readable zip archive") as caught:
        load_zip(zip_path, HandlerRef(), workdir)
    assert caught.value.kind == "bad-package"
    assert tree(tmp_path) == before


def test_load_zip_rejects_duplicate_member(tmp_path: Path, workdir: Path) -> None:
    zip_path = tmp_path / "function.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        make_zip_twice(zip_path, "usermodule.py")
    with load_fails(FailureKind.BAD_PACKAGE, match=r"'usermodule\.py' cannot be extracted"):
        load_zip(zip_path, HandlerRef(), workdir)
    assert extraction_dirs(workdir) == []


@pytest.mark.parametrize(
    "kind", ["future-version", "bad-utf8-name", "directory-offset", "deflate-data"]
)
def test_load_zip_damaged_archive_is_a_load_error(tmp_path: Path, workdir: Path, kind: str) -> None:
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(damaged(kind))
    before = tree(tmp_path)
    with load_fails(FailureKind.BAD_PACKAGE, match=re.escape(str(zip_path))):
        load_zip(zip_path, HandlerRef(), workdir)
    assert tree(tmp_path) == before


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(0, 1 << 20),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
)
def test_load_zip_damaged_archive_loads_or_fails_as_load_error(
    tmp_path: Path, workdir: Path, cut: int, flips: list[tuple[int, int]]
) -> None:
    # The runtime's failure boundary expects FunctionLoadError, whatever the bytes are.
    raw = bytearray(make_zip(tmp_path / "good.zip", PACKAGE_V1).read_bytes())
    for where, value in flips:
        raw[where % len(raw)] = value
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(bytes(raw[: len(raw) - cut % len(raw)]))
    with contextlib.suppress(FunctionLoadError):
        load_zip(zip_path, HandlerRef.parse("pkg.main"), workdir)
    # Whatever happened, only the running version (if any) is left in the workdir.
    assert len(extraction_dirs(workdir)) <= 1
    outside = {p for p in tree(tmp_path) if not p.startswith("work/functions/")}
    assert outside == {"good.zip", "function.zip", "work", "work/functions"}


def make_zip_twice(path: Path, name: str) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, "def handler(i, c):\n    return {'first': 1}\n")
        archive.writestr(name, "def handler(i, c):\n    return {'second': 2}\n")


def test_load_zip_missing_file_names_path(tmp_path: Path, workdir: Path) -> None:
    with load_fails(FailureKind.FUNCTION_MISSING, match=r"absent\.zip"):
        load_zip(tmp_path / "absent.zip", HandlerRef(), workdir)


def test_load_zip_unusable_workdir_is_a_load_error(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "function.zip", PACKAGE_V1)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with load_fails(
        FailureKind.WORKDIR_UNAVAILABLE, match="cannot create a directory in"
    ) as caught:
        load_zip(zip_path, HandlerRef.parse("pkg.main"), blocker / "work")
    assert caught.value.kind == "workdir-unavailable"


def test_load_zip_missing_dependency_names_it_not_the_package(
    tmp_path: Path, workdir: Path
) -> None:
    files = {**PACKAGE_V1, "pkg/helpers.py": "import not_installed_anywhere\n"}
    zip_path = make_zip(tmp_path / "function.zip", files)
    with load_fails(FailureKind.DEPENDENCY_MISSING) as caught:
        load_zip(zip_path, HandlerRef.parse("pkg.main"), workdir)
    assert caught.value.kind == "dependency-missing"
    message = str(caught.value)
    assert "failed to import a dependency (module 'not_installed_anywhere')" in message
    assert str(zip_path) in message
    assert extraction_dirs(workdir) == []


def test_load_zip_handler_module_absent_from_zip_says_so(tmp_path: Path, workdir: Path) -> None:
    zip_path = make_zip(tmp_path / "function.zip", PACKAGE_V1)
    with load_fails(
        FailureKind.MODULE_NOT_FOUND, match=r"contains no module 'pkg\.absent'"
    ) as caught:
        load_zip(zip_path, HandlerRef.parse("pkg.absent:handler"), workdir)
    assert caught.value.kind == "module-not-found"


def test_load_zip_package_named_like_imported_module_is_refused(
    tmp_path: Path, workdir: Path
) -> None:
    files = {"json/__init__.py": "", "json/main.py": "def handler(i, c):\n    return {}\n"}
    with load_fails(FailureKind.UNSAFE_PACKAGE, match="'json' has the name of a module"):
        load_zip(make_zip(tmp_path / "function.zip", files), HandlerRef.parse("json.main"), workdir)
    assert "loads" in dir(sys.modules["json"])  # the real json module is untouched


# Modules the runtime imports, eagerly or lazily (prometheus_client at the first scrape).
SHADOWS = {
    "prometheus_client/__init__.py": "raise RuntimeError('the package shadowed the runtime')\n",
    "redis/__init__.py": "raise RuntimeError('the package shadowed the runtime')\n",
    "orjson.py": "raise RuntimeError('the package shadowed the runtime')\n",
    "json/__init__.py": "raise RuntimeError('the package shadowed the runtime')\n",
}


def test_load_zip_cannot_shadow_modules_the_runtime_imports(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("prometheus_client", "orjson"):
        # As in a runtime that has not served /metrics yet: not imported so far.
        monkeypatch.delitem(sys.modules, name, raising=False)
    files = {**PACKAGE_V1, **SHADOWS, "pkg/main.py": "import json\n" + PACKAGE_V1["pkg/main.py"]}
    loaded = load_zip(
        make_zip(tmp_path / "function.zip", files), HandlerRef.parse("pkg.main"), workdir
    )
    assert loaded.handler({"part": 1, "whole": 4}, None) == {"percent": 25.0, "version": 1}
    for name in ("prometheus_client", "orjson", "redis", "json"):
        origin = importlib.import_module(name).__file__
        assert origin is not None
        assert not Path(origin).is_relative_to(tmp_path), name


@pytest.mark.parametrize("name", ["prometheus_client", "orjson", "psutil"])
def test_load_zip_package_named_like_a_module_the_runtime_can_import_is_refused(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.delitem(sys.modules, name, raising=False)
    files = {f"{name}/__init__.py": "", f"{name}/main.py": "def handler(i, c):\n    return {}\n"}
    with load_fails(FailureKind.UNSAFE_PACKAGE, match=f"'{name}' has the name of a module"):
        load_zip(
            make_zip(tmp_path / "function.zip", files), HandlerRef.parse(f"{name}.main"), workdir
        )
    assert extraction_dirs(workdir) == []


def test_load_zip_syntax_error_names_member_and_line(tmp_path: Path, workdir: Path) -> None:
    files = {**PACKAGE_V1, "pkg/helpers.py": "def share(part, whole):\n    return (part\n"}
    with load_fails(FailureKind.SYNTAX_ERROR, match=r"member pkg/helpers\.py at line 2"):
        load_zip(make_zip(tmp_path / "function.zip", files), HandlerRef.parse("pkg.main"), workdir)


def test_load_zip_missing_function_says_so(tmp_path: Path, workdir: Path) -> None:
    zip_path = make_zip(tmp_path / "function.zip", PACKAGE_V1)
    with load_fails(FailureKind.HANDLER_NOT_FOUND, match="defines no 'absent'"):
        load_zip(zip_path, HandlerRef.parse("pkg.main:absent"), workdir)


def test_load_zip_function_not_callable_says_what_it_is(tmp_path: Path, workdir: Path) -> None:
    zip_path = make_zip(tmp_path / "function.zip", PACKAGE_V1)
    with load_fails(FailureKind.HANDLER_NOT_CALLABLE, match="'VERSION' is a int, not a function"):
        load_zip(zip_path, HandlerRef.parse("pkg:VERSION"), workdir)
