"""The path from a fork to Healthy (argocd/README.md) is written in an order that works, and what
points a user at it — the bootstrap's refusals, the root's info, the docs' commands — points at the
step that fixes it, with a command that runs as written."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from tests.argocd.manifests import REPO

ARGOCD_README = REPO / "argocd" / "README.md"
SECTION = "## From a fork to Healthy, step by step"
STEP = re.compile(r"^(\d+)\. \*\*(.+?)\*\*", re.MULTILINE)
REFERENCE = re.compile(r"argocd/README\.md, steps? (\d+)(?:(?:-| and )(\d+))?")
# Where a user reads a step number: every reference there must name the step that fixes it.
REFERRING = ("scripts/bootstrap_argocd.py", "argocd", "gitops", "README.md")
# What a reference is about (a word near it) -> a word of the title of the step it must name.
TOPICS = {
    "upstream": "Point the fork",
    "placeholder image digest": "Publish",
    "pin pull request": "Promote",
    "Redis": "Redis",
    "not installed": "install Argo CD",
    "Bootstrap": "Bootstrap",
}
# The promotion script is a module of the scripts package (it imports its siblings): run directly,
# `python scripts/promote.py` fails with ModuleNotFoundError before doing anything.
PROMOTE_AS_FILE = re.compile(r"(?<!-m )(?:scripts/)?promote\.py (?:dev|prod|course)\b")
DOCS = ("README.md", "ARCHITECTURE.md", "argocd", "gitops", ".github", "apps/functions/README.md")
REPOSITORY_FILE = REPO / "argocd" / "repository" / "repository.yaml"
# The bootstrap names upstream's URL on purpose: to refuse it.
KEEPS_UPSTREAM = {"scripts/bootstrap_argocd.py"}


def steps() -> dict[int, str]:
    """Number -> title of each step of the fork path."""
    text = ARGOCD_README.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", 1)]
    return {int(n): title for n, title in STEP.findall(section)}


def step(word: str) -> int:
    """The number of the one step whose title holds word."""
    (number,) = [n for n, title in steps().items() if word.lower() in title.lower()]
    return number


def files(*roots: str) -> list[str]:
    """Text files under the roots (paths relative to the repository)."""
    found: list[str] = []
    for root in roots:
        path = REPO / root
        if path.is_file():
            found.append(root)
            continue
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix in (".md", ".py", ".yaml", ".yml", ".sh", ""):
                found.append(str(child.relative_to(REPO)))
    return found


def test_fork_path_steps_are_numbered_in_order() -> None:
    numbers = list(steps())
    assert numbers == list(range(1, len(numbers) + 1))


def test_fork_path_each_step_comes_after_what_it_needs() -> None:
    # The gate asks the registry anonymously and verifies signatures: the packages must be public
    # and the images published before a promotion; prod's Redis must be in the promoted commit.
    assert step("Publish") < step("pull the images") < step("Promote")
    assert step("Redis") < step("Promote")
    # `argocd repo add` needs Argo CD; the bootstrap needs the promoted commit and the repository.
    assert step("install Argo CD") < step("private repository") < step("Bootstrap")
    assert step("Promote") < step("Bootstrap") < step("First sync")
    assert step("Point the fork") == 1


def test_fork_path_references_name_the_step_that_fixes_it() -> None:
    titles = steps()
    checked = 0
    for name in files(*REFERRING):
        lines = (REPO / name).read_text().splitlines()
        for index, line in enumerate(lines):
            for match in REFERENCE.finditer(line):
                named = {int(g) for g in match.groups() if g}
                assert named <= set(titles), f"{name}:{index + 1} names a step that is not there"
                context = " ".join(lines[max(0, index - 3) : index + 1])
                wanted = {step(title) for topic, title in TOPICS.items() if topic in context}
                assert wanted & named, f"{name}:{index + 1}: {line.strip()} (wants {wanted})"
                checked += 1
    assert checked >= 5


def test_fork_path_promotion_commands_run_as_written() -> None:
    wrong = [
        f"{name}:{number}: {line.strip()}"
        for name in files(*DOCS)
        for number, line in enumerate((REPO / name).read_text().splitlines(), 1)
        if PROMOTE_AS_FILE.search(line)
    ]
    assert wrong == []
    result = subprocess.run(
        [sys.executable, "-m", "scripts.promote", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "prod" in result.stdout


def test_fork_path_step_one_names_every_file_that_names_the_owner() -> None:
    # A file step 1 forgets keeps upstream's owner in the fork: the tests that check the owners
    # agree fail, so the fork's CI never passes and its images are never built.
    text = ARGOCD_README.read_text()
    first = text[text.index("1. **Point the fork") : text.index("2. **Repository settings")]
    listed = set(re.findall(r"`([\w./-]+)`", first))
    # The owner the repository file names (upstream's here, the fork's in a fork), as GitHub,
    # GHCR and CODEOWNERS write it: a fork changes every file naming it in step 1.
    url = yaml.safe_load(REPOSITORY_FILE.read_text())["data"]["url"]
    owner = re.escape(url.removeprefix("https://github.com/").split("/")[0].lower())
    names_owner = re.compile(rf"(?:ghcr\.io/|github\.com/|@){owner}/", re.IGNORECASE)
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    naming = {
        name
        for name in tracked
        if name
        and not name.startswith("tests/")
        and name not in KEEPS_UPSTREAM
        and (REPO / name).is_file()
        and names_owner.search((REPO / name).read_text(errors="replace"))
    }
    assert naming, "no file names the owner: the check would pass vacuously"
    unlisted = {
        name
        for name in naming
        if not any(name == entry or name.startswith(entry.rstrip("/") + "/") for entry in listed)
    }
    assert unlisted == set()
