"""A commit-equivalent change to the resource-monitor function, made inside the e2e git server.

The change wraps the deployed handler so that every output also carries a marker the test
chose; seeing the marker in Redis proves the whole path: commit → Argo CD sync → new ConfigMap
→ rolled runtime pod → new output.
"""

from __future__ import annotations

import base64
import shlex

FUNCTION_PATH = "apps/functions/resource-monitor/usermodule.py"
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


def commit_script(
    marker: str,
    repository: str = BARE_REPOSITORY,
    function_path: str = FUNCTION_PATH,
    branch: str = "main",
) -> str:
    """A POSIX shell script that commits the marker change to branch of a bare repository."""
    # The snippet travels base64-encoded, so no quoting of the Python source can go wrong.
    payload = base64.b64encode(marker_snippet(marker).encode()).decode()
    repo, path, ref = shlex.quote(repository), shlex.quote(function_path), shlex.quote(branch)
    return f"""set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet --branch {ref} {repo} "$work"
cd "$work"
printf '%s' {payload} | base64 -d >> {path}
git -c user.name=e2e -c user.email=e2e@localhost commit --quiet --all \\
  --message {shlex.quote(f"e2e: change the function ({marker})")}
git push --quiet origin HEAD:{ref}
git rev-parse HEAD
"""
