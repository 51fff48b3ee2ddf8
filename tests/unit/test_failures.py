"""The failure kinds: one enumeration, and the README's table lists exactly its members."""

from __future__ import annotations

import re
from pathlib import Path

from serverless_runtime.failures import FailureKind

README = Path(__file__).resolve().parents[2] / "apps" / "runtime" / "README.md"


def _table() -> dict[str, str]:
    """The rows of the README's "Failure kinds" table: kind -> meaning."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Failure kinds", 1)[1].split("\n\n", 3)[2]
    rows = re.findall(r"^\| `([a-z-]+)` \| (.+) \|$", section, re.MULTILINE)
    return {kind: meaning for kind, meaning in rows if kind != "kind"}  # not the header


def test_the_readme_lists_every_kind_with_its_meaning() -> None:
    assert _table() == {str(kind): kind.meaning for kind in FailureKind}


def test_every_kind_in_the_failure_table_is_a_member() -> None:
    """The failure semantics table names no kind the runtime cannot write."""
    text = README.read_text(encoding="utf-8")
    semantics = text.split("## Failure semantics", 1)[1].split("### Failure kinds", 1)[0]
    named = set(re.findall(r"^\|[^|]*\| `([a-z-]+)`", semantics, re.MULTILINE))
    assert named - {"kind"} <= {str(kind) for kind in FailureKind}
    assert len(named) > 10


def test_values_are_the_strings_written_in_records() -> None:
    assert str(FailureKind.HANDLER_ERROR) == "handler-error"
    assert f"{FailureKind.POISON_INPUT}" == "poison-input"
    assert len({kind.value for kind in FailureKind}) == len(FailureKind)
