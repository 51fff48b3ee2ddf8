"""Load the GitHub Actions workflows, both as data and as text (for the comments that matter)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
KIND_CONFIG = REPO / ".github" / "kind" / "cluster.yaml"
# `make kind-up`: the one way a kind cluster is brought up, by users and by the e2e workflow.
KIND_UP = REPO / "scripts" / "kind-up.sh"

# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z`
PINNED_USES = re.compile(
    r"uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s+#\s*(?P<tag>v\d+\.\d+\.\d+)\s*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Workflow:
    """One workflow file: its path, its text and its parsed content."""

    path: Path
    text: str
    data: dict[Any, Any]

    @property
    def name(self) -> str:
        """The file name, e.g. ci.yml."""
        return self.path.name

    @property
    def triggers(self) -> dict[str, Any]:
        """The `on:` mapping (YAML 1.1 reads the bare key `on` as true)."""
        on = self.data["on"] if "on" in self.data else self.data.get(True)
        if isinstance(on, str):
            return {on: None}
        if isinstance(on, list):
            return dict.fromkeys(on)
        assert isinstance(on, dict), f"{self.name}: no `on:`"
        return on

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """The jobs by id."""
        jobs: dict[str, dict[str, Any]] = self.data["jobs"]
        return jobs

    def steps(self) -> list[tuple[str, dict[str, Any]]]:
        """(job id, step) for every step of every job."""
        return [
            (job_id, step) for job_id, job in self.jobs.items() for step in job.get("steps", [])
        ]


@cache
def workflows() -> tuple[Workflow, ...]:
    """Every workflow under .github/workflows."""
    found = []
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        text = path.read_text()
        data = yaml.safe_load(text)
        assert isinstance(data, dict), f"{path.name} is not a mapping"
        found.append(Workflow(path, text, data))
    return tuple(found)


def workflow(name: str) -> Workflow:
    """One workflow by file name."""
    (found,) = [w for w in workflows() if w.name == name]
    return found
