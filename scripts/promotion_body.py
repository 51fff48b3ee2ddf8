"""The promotion pull request's body: the commit, the gate's results, the commits between, each
image's old and new digest, each function's version, and the rendered diff of the environment."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from scripts.revisions import OVERLAYS, Snapshot

# A pull request body holds at most 65536 characters; the diff gets what the rest leaves.
MAX_DIFF_LINES = 400
MAX_DIFF_CHARS = 40_000
MAX_COMMITS = 30


@dataclass
class Promotion:
    """What a promotion moves, for the pull request."""

    env: str
    old: Snapshot | None
    new: Snapshot
    commits: list[str]
    checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _rendered_diff(promotion: Promotion) -> list[str]:
    old = promotion.old.rendered if promotion.old else ""
    label = promotion.old.sha[:12] if promotion.old else "nothing"
    diff = list(
        difflib.unified_diff(
            old.splitlines(),
            promotion.new.rendered.splitlines(),
            f"{promotion.env}@{label}",
            f"{promotion.env}@{promotion.new.sha[:12]}",
            lineterm="",
        )
    )
    kept: list[str] = []
    size = 0
    for line in diff:
        if len(kept) >= MAX_DIFF_LINES or size + len(line) > MAX_DIFF_CHARS:
            break
        kept.append(line)
        size += len(line) + 1
    if len(kept) < len(diff):
        kept.append(
            f"… {len(diff) - len(kept)} more lines: render both commits to see them "
            f"(`kubectl kustomize {OVERLAYS}/{promotion.env}` in each)"
        )
    return kept or ["(no change in what the environment renders)"]


def body(promotion: Promotion) -> str:
    """The pull request's body: the revision, the checks, what moves, the rendered diff."""
    env, new, old = promotion.env, promotion.new, promotion.old
    lines = [
        f"Promotes **{env}** to `{new.sha}`"
        + (f" (from `{old.sha}`)." if old else " (its first pinned commit)."),
        "",
        "### Gate",
        "",
    ]
    lines += [f"- {w}" for w in promotion.warnings] + [f"- {c}" for c in promotion.checks]
    if old:
        lines += ["", f"### Commits ({len(promotion.commits)})", ""]
        lines += [f"- {c}" for c in promotion.commits[:MAX_COMMITS]]
        if len(promotion.commits) > MAX_COMMITS:
            lines.append(f"- … and {len(promotion.commits) - MAX_COMMITS} more")
    lines += ["", "### Images", "", "| image | old digest | new digest |", "|---|---|---|"]
    before = old.images if old else {}
    for name in sorted(set(before) | set(new.images)):
        was, now = before.get(name, "—"), new.images.get(name, "—")
        lines.append(f"| `{name}` | `{was}` | `{now}`{'' if was != now else ' (unchanged)'} |")
    lines += ["", "### Functions", "", "| function | old | new |", "|---|---|---|"]
    was_f = old.functions if old else {}
    for name in sorted(set(was_f) | set(new.functions)):
        was, now = was_f.get(name, "—"), new.functions.get(name, "—")
        lines.append(f"| `{name}` | {was} | {now if now != was else 'unchanged'} |")
    lines += ["", f"### Rendered diff of {env}", "", "```diff", *_rendered_diff(promotion), "```"]
    return "\n".join(lines)
