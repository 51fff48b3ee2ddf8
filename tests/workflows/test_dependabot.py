"""Dependabot's configuration: valid, and covering what it can update (the actions the workflows
pin by commit); what it cannot follow is documented where the pins are explained."""

from __future__ import annotations

import yaml

from tests.workflows.test_linters import run, tool
from tests.workflows.workflows import PINNED_USES, REPO, workflows

DEPENDABOT = REPO / ".github" / "dependabot.yml"
README = REPO / "gitops" / "README.md"


def test_dependabot_config_matches_its_schema() -> None:
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(DEPENDABOT)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_updates_the_actions_every_workflow_pins() -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    (actions,) = [u for u in config["updates"] if u["package-ecosystem"] == "github-actions"]
    # "/" covers .github/workflows; grouped, so one pull request moves a shared pin everywhere.
    assert actions["directory"] == "/"
    assert actions["groups"]["actions"]["patterns"] == ["*"]
    # What it updates is in the form it understands: a commit SHA and the release in a comment.
    assert all(PINNED_USES.search(w.text) for w in workflows())


def test_dependabot_limits_are_documented() -> None:
    text = DEPENDABOT.read_text()
    assert "dependabot-core#2057" in text and "Images and their bases" in text
    assert "## Images and their bases" in README.read_text()
