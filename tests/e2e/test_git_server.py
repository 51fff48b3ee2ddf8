"""The e2e git server's command, run here on loopback: Argo CD can list and clone the served
repository over git://, and sees a commit pushed into it the way the function-change test does."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.function_change import commit_script
from tests.e2e.served_repo import REPO, git
from tests.support.valkey import free_port

MANIFEST = Path(__file__).parent / "git-server.yaml"


def daemon_command() -> str:
    """The shell command of the git-server container."""
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c"]
    (script,) = container["args"]
    return str(script)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The container's command with /srv/git moved under tmp_path, listening on 127.0.0.1."""
    if not Path(
        subprocess.run(
            ["git", "--exec-path"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "git-daemon",
    ).exists():
        pytest.skip("git-daemon is not installed with this git")
    port = free_port()
    srv = tmp_path / "srv-git"
    script = (
        daemon_command()
        .replace("/srv/git", shlex.quote(str(srv)))
        .replace("--listen=0.0.0.0", "--listen=127.0.0.1")
        .replace("--port=9418", f"--port={port}")
    )
    proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The repository arrives once the daemon runs, as in the workflow (tar via kubectl exec).
    work = tmp_path / "work"
    (work / "apps").mkdir(parents=True)
    shutil.copy(REPO / "apps/functions/resource-monitor/usermodule.py", work / "apps" / "f.py")
    git(work, "init", "--quiet", "--initial-branch", "main")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "--message", "start")
    bare = srv / "serverless.git"
    deadline = time.monotonic() + 10
    while not bare.is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(tmp_path / "staged.git"))
    staged = shlex.quote(str(tmp_path / "staged.git"))
    target = shlex.quote(str(bare))
    subprocess.run(f"tar -C {staged} -cf - . | tar -C {target} -xf -", shell=True, check=True)
    url = f"git://127.0.0.1:{port}/serverless.git"
    try:
        yield url, bare
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


def ls_remote(url: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        result = subprocess.run(
            ["git", "ls-remote", url, "main"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[0]


def test_git_server_serves_the_repository_and_a_new_commit(
    tmp_path: Path, served: tuple[str, Path]
) -> None:
    url, bare = served
    first = ls_remote(url)
    assert first == git(bare, "rev-parse", "main").strip()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", url, str(clone))
    assert (clone / "apps" / "f.py").is_file()

    result = subprocess.run(
        ["sh", "-c", commit_script("m-789", repository=str(bare), function_path="apps/f.py")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    second = ls_remote(url)
    assert second != first
    assert second == result.stdout.strip().splitlines()[-1]
