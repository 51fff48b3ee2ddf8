"""Offline pip for tests: pip unpacked from the interpreter's own ensurepip, and wheels made here.

With PIP_NO_INDEX=1 and PIP_FIND_LINKS=<a wheel directory>, pip installs without any index.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest


def bundled_pip(dest: Path) -> Path:
    """A directory holding the `pip` package (as the image's /opt/pip), from ensurepip's wheel."""
    import ensurepip

    wheels = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not wheels:
        pytest.skip("this Python ships no ensurepip wheel of pip")
    with zipfile.ZipFile(wheels[-1]) as archive:
        archive.extractall(dest)
    return dest


def build_wheel(folder: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A pure-Python wheel `name`-`version` holding `files` (path -> text), in `folder`."""
    info = f"{name}-{version}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    members[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [
        f"{path},sha256={_digest(text)},{len(text.encode())}" for path, text in members.items()
    ]
    members[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return path


def _digest(text: str) -> str:
    raw = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
