"""A commit-equivalent change to the resource-monitor function, made inside the e2e git server.

The change wraps the deployed handler so that every output also carries a marker the test
chose; seeing the marker in Redis proves the whole path: commit → Argo CD sync → new ConfigMap
→ rolled runtime pod → new output.
"""

from __future__ import annotations

import base64
import shlex

FUNCTION_PATH = "apps/functions/resource-monitor/usermodule.py"
# Argo CD's RBAC as Git holds it: the e2e commits a comment into its policy (test_boundary.py).
RBAC_FILE = "argocd/platform/argocd-rbac-cm.yaml"
BARE_REPOSITORY = "/srv/git/serverless.git"
MARKER_KEY = "e2e-marker"


def marker_snippet(marker: str) -> str:
    """Python source to append to the function file: the old handler's output plus the marker."""
    return f"""

# e2e: added by tests/e2e/function_change.py to prove a Git change reaches the cluster.
_e2e_previous_handler = handler


def handler(input, context):
    result = _e2e_previous_handler(input, context)
    if result:
        result[{MARKER_KEY!r}] = {marker!r}
    return result
"""


def append_script(
    text: str,
    path: str,
    message: str,
    repository: str = BARE_REPOSITORY,
    branch: str = "main",
) -> str:
    """A POSIX shell script that appends text to path and commits it to branch of a bare repository.

    It prints the new commit id last."""
    # The text travels base64-encoded, so no quoting of it can go wrong.
    payload = base64.b64encode(text.encode()).decode()
    repo, target, ref = shlex.quote(repository), shlex.quote(path), shlex.quote(branch)
    return f"""set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet --branch {ref} {repo} "$work"
cd "$work"
printf '%s' {payload} | base64 -d >> {target}
git -c user.name=e2e -c user.email=e2e@localhost commit --quiet --all \\
  --message {shlex.quote(message)}
git push --quiet origin HEAD:{ref}
git rev-parse HEAD
"""


def commit_script(
    marker: str,
    repository: str = BARE_REPOSITORY,
    function_path: str = FUNCTION_PATH,
    branch: str = "main",
) -> str:
    """A POSIX shell script that commits the marker change to branch of a bare repository."""
    return append_script(
        marker_snippet(marker),
        function_path,
        f"e2e: change the function ({marker})",
        repository=repository,
        branch=branch,
    )
