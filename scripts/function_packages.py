"""Checks a function's packages against the runtime's: `python function_packages.py check DIR`.

A function's requirements are installed into their own directory (DIR), which comes on sys.path
after the runtime's site-packages. A package that both hold is therefore always the runtime's
copy: at the same version that is harmless, at another version the function would silently get a
version it did not pin. This refuses the latter, naming each package and both versions. Run it
with the runtime's Python (the image's /opt/venv/bin/python, or a local function venv's), before
DIR is on its path. Standard library only: it runs inside the image build.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from collections.abc import Iterable, Mapping


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(paths: Iterable[str]) -> dict[str, str]:
    """name -> version of every distribution found on PATHS (the first one wins, as on sys.path)."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=list(paths)):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normalize(name), dist.version)
    return found


def conflicts(runtime: Mapping[str, str], function: Mapping[str, str]) -> list[str]:
    """One line for every package the function pins at a version other than the runtime's."""
    return [
        f"{name}: the function pins {version}, the runtime ships {runtime[name]}"
        for name, version in sorted(function.items())
        if name in runtime and runtime[name] != version
    ]


def check(directory: str) -> int:
    """0 if no package in DIRECTORY would be shadowed by another version of the runtime's."""
    runtime = installed(p for p in sys.path if p.rstrip("/") != directory.rstrip("/"))
    problems = conflicts(runtime, installed([directory]))
    if problems:
        print(
            "function packages: these requirements would be shadowed by the runtime's own "
            "packages (the runtime's come first on sys.path). Pin the runtime's version or drop "
            "the requirement:",
            *(f"  {line}" for line in problems),
            sep="\n",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "check":
        print("usage: function_packages.py check DIR", file=sys.stderr)
        return 2
    return check(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
