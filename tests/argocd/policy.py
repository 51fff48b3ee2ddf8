"""Parse Argo CD's Casbin policy lines (`p, …` and `g, …`) the way its RBAC loader reads them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from fnmatch import fnmatchcase

# Resources and actions of Argo CD 3's RBAC model (operator-manual/rbac.md).
RESOURCES = frozenset(
    {
        "applications",
        "applicationsets",
        "clusters",
        "projects",
        "repositories",
        "repositories-write",
        "certificates",
        "accounts",
        "gpgkeys",
        "logs",
        "exec",
        "extensions",
    }
)
ACTIONS = frozenset({"get", "create", "update", "delete", "sync", "override", "invoke", "*"})
# Resources whose object is `<project>/<application>` rather than a plain name.
PROJECT_SCOPED = frozenset({"applications", "applicationsets", "logs", "exec"})
BUILTIN_ROLES = frozenset({"role:readonly", "role:admin"})


@dataclass(frozen=True)
class Permission:
    """A `p` line: subject may (or may not) do action on resource object."""

    subject: str
    resource: str
    action: str
    obj: str
    effect: str


@dataclass(frozen=True)
class Grant:
    """A `g` line: subject (user, group or role) inherits role."""

    subject: str
    role: str


def parse_line(line: str) -> Permission | Grant:
    """One non-comment policy line; raises ValueError when it is not a well-formed p or g line."""
    fields = [f.strip() for f in next(csv.reader([line], skipinitialspace=True))]
    if fields[0] == "p":
        if len(fields) not in (5, 6):
            raise ValueError(f"`p` needs subject, resource, action, object[, effect]: {line!r}")
        effect = fields[5] if len(fields) == 6 else "allow"
        if effect not in ("allow", "deny"):
            raise ValueError(f"effect must be allow or deny: {line!r}")
        if fields[2] not in RESOURCES:
            raise ValueError(f"unknown resource {fields[2]!r}: {line!r}")
        action = fields[3]
        # action/<group>/<kind>/<name> runs resource actions; update/… and delete/… scope
        # those verbs to an application's resources.
        if action not in ACTIONS and not action.startswith(("action/", "update/", "delete/")):
            raise ValueError(f"unknown action {action!r}: {line!r}")
        return Permission(fields[1], fields[2], action, fields[4], effect)
    if fields[0] == "g":
        if len(fields) != 3:
            raise ValueError(f"`g` needs subject and role: {line!r}")
        return Grant(fields[1], fields[2])
    raise ValueError(f"a policy line starts with p or g: {line!r}")


def parse_csv(text: str) -> list[Permission | Grant]:
    """Every rule in a policy.csv text; `#` lines and blank lines are comments, as in Argo CD."""
    rules: list[Permission | Grant] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append(parse_line(line))
    return rules


def roles_of(rules: list[Permission | Grant], subject: str) -> set[str]:
    """The subject and every role it inherits through `g` lines, transitively."""
    found = {subject}
    pending = [subject]
    while pending:
        current = pending.pop()
        for rule in rules:
            if isinstance(rule, Grant) and rule.subject == current and rule.role not in found:
                found.add(rule.role)
                pending.append(rule.role)
    return found


def allowed(
    rules: list[Permission | Grant], subject: str, resource: str, action: str, obj: str
) -> bool:
    """Casbin as Argo CD configures it: a matching deny wins, else any matching allow.

    Action and object match as globs (`*` also spans `/`), like Argo CD's glob matcher."""
    subjects = roles_of(rules, subject)
    matching = [
        rule
        for rule in rules
        if isinstance(rule, Permission)
        and rule.subject in subjects
        and rule.resource == resource
        and fnmatchcase(action, rule.action)
        and fnmatchcase(obj, rule.obj)
    ]
    if any(rule.effect == "deny" for rule in matching):
        return False
    return any(rule.effect == "allow" for rule in matching)
