"""scripts/promote.py against a real git repository with two revisions, rendered by the real
kustomize: dev's digests go to gitops/registry; prod and course are pinned to a commit dev ran,
through a gate that asks GitHub, the registry, cosign and Argo CD (answered here by fakes), and
the pull request's body says what moves, with the rendered diff."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from scripts import promote, revisions
from scripts.promotion_checks import EMPTY_DIGEST, Response
from tests.manifests.images import FUNCTION_IMAGES, OUR_IMAGES
from tests.manifests.rendered import REPO_ROOT, kustomize_build

REPOSITORY = "acme/serverless"
IDENTITY = f"https://github.com/{REPOSITORY}/.github/workflows/images.yml@refs/heads/main"
FIRST = "sha256:" + "1a2b" * 16
SECOND = "sha256:" + "3c4d" * 16
FUNCTION = "sha256:" + "5e6f" * 16
OVERLAY_DIFF_MARK = "/readyz-v2"


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class Repo:
    root: Path
    first: str  # what prod and course run (their Applications name it)
    second: str  # the newer commit dev ran: a new function version, image, and pod

    def pinned(self, env: str) -> str:
        return promote.pinned_revision(self.root, env)

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new, 1))


def set_registry(root: Path, runtime: str) -> None:
    digests = {name: FUNCTION for name in promote.registry_files(root)}
    promote.set_digests(root, {**digests, "serverless-runtime": runtime})


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    root = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".venv")
    for part in ("gitops", "apps/functions", "argocd"):
        shutil.copytree(REPO_ROOT / part, root / part, ignore=ignore)
    git(tmp_path, "init", "--quiet", "--initial-branch", "main", str(root))
    set_registry(root, FIRST)
    first = commit(root, "first: published images")
    for env in promote.PROMOTED:
        promote.write_revision(root, env, first)
    commit(root, "prod and course run the first commit")
    # The next revision changes three layers at once: a function, an image and the shared pod.
    code = root / "apps/functions/resource-monitor/usermodule.py"
    code.write_text(code.read_text() + "# version 2\n")
    set_registry(root, SECOND)
    pod = root / "gitops/components/function-pod/pod.yaml"
    pod.write_text(pod.read_text().replace("path: /readyz", f"path: {OVERLAY_DIFF_MARK}"))
    second = commit(root, "resource-monitor v2, a new runtime image, a new readiness path")
    return Repo(root, first, second)


@dataclass
class World:
    """GitHub, the registry (with GHCR's anonymous token dance), cosign and Argo CD."""

    ci: str = "success"
    registry_status: int = 200
    refuse_cosign: str = ""  # the cosign subcommand (and type) that fails, e.g. "verify"
    argocd: dict[str, object] | None = None
    calls: list[str] = field(default_factory=list)

    def http(self, method: str, url: str, headers: Mapping[str, str]) -> Response:
        self.calls.append(f"{method} {url}")
        parsed = urlparse(url)
        if parsed.hostname == "api.github.com":
            query = parse_qs(parsed.query)
            runs = [{"conclusion": self.ci, "html_url": "https://ci/run/1"}]
            if "head_sha" not in query:
                runs = [{"head_sha": "unused", "conclusion": "success"}]
            return Response(200, {}, json.dumps({"workflow_runs": runs}).encode())
        if parsed.hostname == "ghcr.io" and parsed.path == "/token":
            return Response(200, {}, b'{"token": "anonymous"}')
        if parsed.hostname == "ghcr.io":
            assert "application/vnd.oci.image.index.v1+json" in headers["Accept"]
            if headers.get("Authorization") != "Bearer anonymous":
                challenge = 'Bearer realm="https://ghcr.io/token",service="ghcr.io"'
                return Response(401, {"WWW-Authenticate": challenge}, b"")
            digest = parsed.path.rsplit("/", 1)[-1]
            return Response(self.registry_status, {"Docker-Content-Digest": digest}, b"")
        if parsed.hostname == "argocd.example" and self.argocd is not None:
            assert headers["Authorization"] == "Bearer read-only"
            return Response(200, {}, json.dumps(self.argocd).encode())
        return Response(404, {}, b"")

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(" ".join(argv))
        assert argv[argv.index("--certificate-identity") + 1] == IDENTITY
        kind = argv[1] if argv[1] == "verify" else f"{argv[1]} {argv[3]}"
        failed = self.refuse_cosign == kind
        return subprocess.CompletedProcess(argv, int(failed), "", "no signatures found\n")

    def dev_ran(self, sha: str, minutes: int, health: str = "Healthy") -> None:
        deployed = datetime.now(UTC) - timedelta(minutes=minutes)
        self.argocd = {
            "status": {
                "sync": {"status": "Synced", "revision": sha},
                "health": {"status": health},
                "history": [{"revision": sha, "deployedAt": deployed.isoformat()}],
            }
        }


ENVIRON = {"GITHUB_REPOSITORY": REPOSITORY}
ARGOCD = {**ENVIRON, "ARGOCD_SERVER": "argocd.example", "ARGOCD_AUTH_TOKEN": "read-only"}


def run(
    repo: Repo,
    world: World,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    environ: Mapping[str, str] = ENVIRON,
) -> tuple[int, str, str]:
    code = promote.main(
        [*args, "--root", str(repo.root)], http=world.http, run=world.run, environ=environ
    )
    out, err = capsys.readouterr()
    return code, out, err


def render_at(repo: Repo, sha: str, env: str) -> str:
    """What Argo CD renders for env at commit sha."""
    with tempfile.TemporaryDirectory() as temp:
        tree = revisions.extract(repo.root, sha, Path(temp))
        return revisions.kustomize(tree / "gitops/overlays" / env)


def refused(code: int, err: str, repo: Repo, env: str, *words: str) -> None:
    """Refused with one line naming the reason; the Application still names its old commit."""
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("promote: refused: "), err
    for word in words:
        assert word in err, err
    assert repo.pinned(env) == repo.first


def test_promote_prod_pins_the_commit_and_records_what_moves(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    code, body, err = run(repo, world, capsys, "prod", "--revision", repo.second)
    assert code == 0, err
    assert repo.pinned("prod") == repo.second
    assert repo.pinned("course") == repo.first, "course is promoted on its own"
    # What prod runs now: every layer of the new commit (function, image, pod) together.
    rendered = render_at(repo, repo.pinned("prod"), "prod")
    assert "# version 2" in rendered and SECOND in rendered and OVERLAY_DIFF_MARK in rendered
    # The pull request's body: checks, commits, images old -> new, function versions, diff.
    assert f"Promotes **prod** to `{repo.second}` (from `{repo.first}`)" in body
    assert "CI passed on main: https://ci/run/1" in body
    assert "`serverless-runtime` published, signed, SBOM and provenance attested" in body
    assert "resource-monitor v2, a new runtime image" in body
    assert f"| `serverless-runtime` | `{FIRST}` | `{SECOND}` |" in body
    assert f"| `serverless-function-cpu-stats` | `{FUNCTION}` | `{FUNCTION}` (unchanged) |" in body
    folders = {
        sha: git(repo.root, "rev-parse", f"{sha}:apps/functions/resource-monitor")[:12]
        for sha in (repo.first, repo.second)
    }
    row = next(line for line in body.splitlines() if line.startswith("| `resource-monitor`"))
    assert folders[repo.first] in row and folders[repo.second] in row
    assert re.search(r"^\| `cpu-stats` \| .* \| unchanged \|$", body, re.MULTILINE)
    diff = body.split("```diff\n", 1)[1]
    assert f"--- prod@{repo.first[:12]}" in diff and f"+++ prod@{repo.second[:12]}" in diff
    assert re.search(rf"^\+\s+path: {OVERLAY_DIFF_MARK}$", diff, re.MULTILINE)
    assert "+    # version 2" in diff
    assert any(line.startswith("-") and FIRST in line for line in diff.splitlines())
    # The gate asked about this commit and these images, and nothing else.
    assert any(f"head_sha={repo.second}" in call for call in world.calls)
    for image in OUR_IMAGES:
        assert any(f"/{image}/manifests/sha256:" in call for call in world.calls), image
    cosign = [c for c in world.calls if c.startswith("cosign")]
    # verify, SBOM and provenance attestations, for each image
    assert len(cosign) == 3 * len(OUR_IMAGES)
    assert "promote: WARNING: ARGOCD_SERVER / ARGOCD_AUTH_TOKEN not set" in err
    assert "- WARNING: ARGOCD_SERVER / ARGOCD_AUTH_TOKEN not set" in body


def test_promote_course_moves_its_pyfile_with_the_commit(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    before = render_at(repo, repo.first, "course")
    code, body, err = run(repo, World(), capsys, "course", "--revision", repo.second)
    assert code == 0, err
    after = render_at(repo, repo.pinned("course"), "course")
    assert "# version 2" not in before and "# version 2" in after
    old_name = re.search(r"name: (pyfile-\w+)", before)
    new_name = re.search(r"name: (pyfile-\w+)", after)
    assert old_name and new_name and old_name[1] != new_name[1], "a new pyfile rolls the pods"
    assert f"-  name: {old_name[1]}" in body and f"+  name: {new_name[1]}" in body
    # course runs resource-monitor only: its table names no other function.
    assert "`cpu-stats`" not in body and "| `resource-monitor` |" in body


def test_pinned_render_ignores_later_commits_until_promoted(repo: Repo) -> None:
    # A change under gitops/base and gitops/components, merged into main after the promotion,
    # changes dev's render at once but not what prod's pinned commit renders.
    before = {env: render_at(repo, repo.first, env) for env in promote.PROMOTED}
    repo.edit("gitops/base/dashboard-deployment.yaml", "/healthz", "/healthz-v3")
    repo.edit("gitops/components/function-pod/pod.yaml", "/healthz", "/healthz-v3")
    later = commit(repo.root, "change the shared layers")
    assert "/healthz-v3" in render_at(repo, later, "dev")
    for env in promote.PROMOTED:
        assert render_at(repo, repo.pinned(env), env) == before[env]
        assert "/healthz-v3" in render_at(repo, later, env), "it would, once promoted"


@pytest.mark.parametrize(
    ("digest", "why"),
    [
        (EMPTY_DIGEST, "digest of empty content"),
        ("sha256:" + "0" * 64, "made-up digest"),
        ("sha256:abc", "not a sha256 digest"),
    ],
)
def test_promote_refuses_a_placeholder_digest(
    repo: Repo, capsys: pytest.CaptureFixture[str], digest: str, why: str
) -> None:
    path = repo.root / "gitops/registry/dashboard.yaml"
    path.write_text(re.sub(r"digest: \S+", f"digest: {digest}", path.read_text()))
    placeholder = commit(repo.root, "a placeholder digest")
    world = World()
    code, _, err = run(repo, world, capsys, "prod", "--revision", placeholder)
    refused(code, err, repo, "prod", "monitoring-dashboard", why)
    assert world.calls == [], "refused before asking anyone"


@pytest.mark.parametrize(
    ("world", "why"),
    [
        (World(ci="failure"), "CI did not pass"),
        (World(registry_status=404), "not published"),
        (World(refuse_cosign="verify"), "not signed"),
        (World(refuse_cosign="verify-attestation spdxjson"), "not attested (spdxjson)"),
        (World(refuse_cosign="verify-attestation slsaprovenance"), "attested (slsaprovenance)"),
    ],
)
def test_promote_refuses_what_the_gate_cannot_confirm(
    repo: Repo, capsys: pytest.CaptureFixture[str], world: World, why: str
) -> None:
    code, out, err = run(repo, world, capsys, "prod", "--revision", repo.second)
    refused(code, err, repo, "prod", why)
    assert out == ""


def test_promote_refuses_a_commit_not_on_main(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo.root, "switch", "--quiet", "--create", "feature")
    (repo.root / "apps/functions/resource-monitor/usermodule.py").write_text("# unreviewed\n")
    side = commit(repo.root, "not merged")
    git(repo.root, "switch", "--quiet", "main")
    code, _, err = run(repo, World(), capsys, "prod", "--revision", side)
    refused(code, err, repo, "prod", "not on main")


def test_promote_refuses_a_rollback_unless_allowed(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, World(), capsys, "prod", "--revision", repo.second)[0] == 0
    code, _, err = run(repo, World(), capsys, "prod", "--revision", repo.first)
    assert code == 1 and "a rollback needs --allow-rollback" in err
    assert repo.pinned("prod") == repo.second
    code, body, err = run(
        repo, World(), capsys, "prod", "--revision", repo.first, "--allow-rollback"
    )
    assert code == 0, err
    assert repo.pinned("prod") == repo.first
    assert f"| `serverless-runtime` | `{SECOND}` | `{FIRST}` |" in body


def test_promote_asks_argocd_what_dev_ran_and_for_how_long(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    world.dev_ran(repo.second, minutes=20)
    # No --revision: the commit dev runs, as Argo CD reports it.
    code, body, err = run(repo, world, capsys, "prod", environ=ARGOCD)
    assert code == 0, err
    assert repo.pinned("prod") == repo.second
    assert f"serverless-dev ran {repo.second[:12]}" in body and "WARNING" not in err + body


@pytest.mark.parametrize(
    ("minutes", "health", "why"),
    [(2, "Healthy", "for 2 min, less than 10 min"), (20, "Degraded", "Synced and Degraded")],
)
def test_promote_refuses_what_dev_did_not_run_healthy_long_enough(
    repo: Repo, capsys: pytest.CaptureFixture[str], minutes: int, health: str, why: str
) -> None:
    world = World()
    world.dev_ran(repo.second, minutes=minutes, health=health)
    code, _, err = run(repo, world, capsys, "prod", "--revision", repo.second, environ=ARGOCD)
    refused(code, err, repo, "prod", why)
    world.dev_ran(repo.first, minutes=60)
    code, _, err = run(repo, world, capsys, "prod", "--revision", repo.second, environ=ARGOCD)
    refused(code, err, repo, "prod", f"never ran {repo.second[:12]}")


def test_promote_names_a_pinned_commit_missing_from_the_clone(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    promote.write_revision(repo.root, "prod", "0123456789" * 4)
    code, _, err = run(repo, World(), capsys, "prod", "--revision", repo.second)
    assert code == 2
    assert err == f"promote: {'0123456789' * 4} is not a commit of this clone " + (
        "(fetch main with its full history)\n"
    )


def test_promotion_dev_pins_the_registry_and_keeps_comments(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = repo.root / "gitops/registry/runtime.yaml"
    comments = [line for line in registry.read_text().splitlines() if line.startswith("#")]
    new = "sha256:" + "7a8b" * 16
    args = ["dev", "--runtime-digest", new, "--dashboard-digest", SECOND]
    for image in FUNCTION_IMAGES:
        args += ["--function-digest", f"{image.removeprefix('serverless-function-')}={FUNCTION}"]
    code, out, err = run(repo, World(), capsys, *args)
    assert code == 0, err
    assert [line for line in registry.read_text().splitlines() if line.startswith("#")] == comments
    images = {
        c["image"].rsplit("/", 1)[-1]
        for d in kustomize_build(repo.root / "gitops/overlays/dev")
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {
        f"serverless-runtime@{new}",
        f"monitoring-dashboard@{SECOND}",
        *(f"{image}@{FUNCTION}" for image in FUNCTION_IMAGES),
        "redis:8.10",
    }
    assert new in out


@pytest.mark.parametrize(
    "args",
    [
        ["dev"],
        ["dev", "--runtime-digest", "sha256:abc", "--dashboard-digest", SECOND],
        ["dev", "--runtime-digest", FIRST, "--dashboard-digest", SECOND],  # cpu-stats missing
        ["prod", "--runtime-digest", FIRST, "--dashboard-digest", SECOND],
    ],
)
def test_promotion_refuses_incomplete_or_invalid_input(
    repo: Repo, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    files = sorted((repo.root / "gitops/registry").glob("*.yaml"))
    before = [f.read_text() for f in files]
    try:
        code = run(repo, World(), capsys, *args)[0]
    except SystemExit as exit_:  # refused by the argument parser
        code = int(str(exit_.code))
    assert code == 2
    assert [f.read_text() for f in files] == before
    assert repo.pinned("prod") == repo.first
