"""The delivery path in the workflows: images only after CI passed on main, built once and pinned
by digest; dev changed by a pull request, never a push to main; no loop, whatever the token;
prod and course promoted by a reviewed, gated pull request naming the commit they run; every image
signed and attested keyless by the image workflow."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.pods.dockerfile import DOCKERFILES, instructions
from tests.workflows.workflows import REPO, workflow, workflows

SCRIPTS = REPO / "scripts"
PROMOTED = sorted(
    p.name for p in (REPO / "gitops" / "overlays").iterdir() if p.is_dir() and p.name != "dev"
)


def run_lines() -> list[tuple[str, str, str]]:
    """(workflow, job id, line) for every line of every run step."""
    return [
        (w.name, job_id, line.strip())
        for w in workflows()
        for job_id, step in w.steps()
        for line in str(step.get("run", "")).splitlines()
    ]


def step_with(workflow_name: str, job_id: str, text: str) -> dict[str, Any]:
    steps = workflow(workflow_name).jobs[job_id]["steps"]
    (step,) = [s for s in steps if text in s.get("run", "")]
    found: dict[str, Any] = step
    return found


def test_delivery_images_are_built_only_after_ci_passed_on_main() -> None:
    ci = workflow("ci.yml")
    job = ci.jobs["images"]
    assert job["needs"] == "test"
    assert job["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert job["uses"] == "./.github/workflows/images.yml"
    # Nothing else can start images.yml: it has no trigger of its own.
    assert set(workflow("images.yml").triggers) == {"workflow_call"}
    assert ci.triggers["push"] == {"branches": ["main"]}


def test_delivery_pull_requests_build_images_without_pushing_or_writing() -> None:
    job = workflow("ci.yml").jobs["image-build"]
    assert job["if"] == "github.event_name == 'pull_request'"
    assert job["permissions"] == {"contents": "read"}
    (build,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push")]
    assert build["with"]["push"] is False
    assert "cache-to" not in build["with"]
    dockerfiles = {e["dockerfile"] for e in job["strategy"]["matrix"]["include"]}
    assert dockerfiles == {str(p.relative_to(REPO)) for p in DOCKERFILES.values()}


def test_delivery_permissions_are_the_least_each_job_needs() -> None:
    granted = {
        (w.name, job_id): job.get("permissions", {})
        for w in workflows()
        for job_id, job in w.jobs.items()
    }
    writes = {
        key: {scope for scope, access in perms.items() if access == "write"}
        for key, perms in granted.items()
        if "write" in perms.values()
    }
    assert writes == {
        ("ci.yml", "images"): {"contents", "packages", "pull-requests", "id-token"},
        ("images.yml", "publish"): {"packages", "id-token"},
        ("images.yml", "pin-dev"): {"contents", "pull-requests"},
        ("promote.yml", "promote"): {"contents", "pull-requests"},
    }
    # What images.yml's jobs ask for is within what ci.yml's caller grants.
    caller = set(granted[("ci.yml", "images")])
    for job_id, job in workflow("images.yml").jobs.items():
        assert set(job["permissions"]) <= caller, job_id


def test_delivery_images_are_built_once_and_named_from_the_registry_folder() -> None:
    publish = workflow("images.yml").jobs["publish"]
    builds = [s for s in publish["steps"] if str(s.get("uses", "")).startswith("docker/build-push")]
    assert {s["with"]["file"] for s in builds} == {
        str(p.relative_to(REPO)) for p in DOCKERFILES.values()
    }
    for build in builds:
        # Only when no image of the same sources exists; tagged by source key and commit.
        assert build["if"].endswith("-existing.outputs.digest == ''")
        assert build["with"]["push"] is True
        tags = build["with"]["tags"].splitlines()
        assert [re.sub(r"\$\{\{[^}]*\}\}", "X", t) for t in tags] == ["X:src-X", "X:sha-X"]
        assert "no-cache" not in build["with"]
    (names,) = [s["run"] for s in publish["steps"] if s.get("id") == "names"]
    for path in ("gitops/registry/runtime.yaml", "gitops/registry/dashboard.yaml"):
        assert path in str(names) and (REPO / path).is_file()


def source_key_paths() -> list[str]:
    run = str(step_with("images.yml", "publish", "git ls-tree HEAD --")["run"])
    match = re.search(r"git ls-tree HEAD -- ([^|]+)\|", run)
    assert match is not None
    return match[1].split()


def test_delivery_source_key_covers_what_the_dockerfiles_read_and_never_gitops() -> None:
    paths = source_key_paths()
    assert not any(p.startswith(("gitops", ".github", "argocd")) for p in paths)
    covered = [Path(p) for p in paths]
    lines = (REPO / ".dockerignore").read_text().splitlines()
    allowed = [Path(line[1:]) for line in lines if line.startswith("!")]
    assert allowed
    for path in allowed:
        assert any(path == c or c in path.parents for c in covered), path
    # Every COPY of the Dockerfiles (and the Dockerfiles themselves) is inside the key.
    for dockerfile in DOCKERFILES.values():
        assert any(c in dockerfile.relative_to(REPO).parents for c in covered), dockerfile
        for instruction, args in instructions(dockerfile):
            if instruction == "COPY" and "--from" not in args:
                for source in shlex.split(args)[:-1]:
                    assert any(Path(source) == c or c in Path(source).parents for c in covered), (
                        source
                    )


def test_delivery_dev_is_pinned_by_a_pull_request_with_the_published_digests() -> None:
    job = workflow("images.yml").jobs["pin-dev"]
    assert job["needs"] == "publish"
    pin = step_with("images.yml", "pin-dev", "-m scripts.promote dev")
    env = pin["env"]
    assert isinstance(env, dict)
    assert env == {
        "RUNTIME_DIGEST": "${{ needs.publish.outputs.runtime-digest }}",
        "DASHBOARD_DIGEST": "${{ needs.publish.outputs.dashboard-digest }}",
        "BASE_IMAGE": "${{ needs.publish.outputs.base-image }}",
        "FUNCTION_DIGESTS": "${{ needs.publish.outputs.function-digests }}",
    }
    outputs = workflow("images.yml").jobs["publish"]["outputs"]
    assert set(outputs) == {"runtime-digest", "dashboard-digest", "base-image", "function-digests"}
    assert '--function-digest "${pair}"' in str(pin["run"])
    # The pull request says which base the images it pins are built on.
    assert '"$BASE_IMAGE" >> "${RUNNER_TEMP}/body.md"' in str(pin["run"])
    pr = step_with("images.yml", "pin-dev", "scripts/pull-request.sh")
    assert "scripts/pull-request.sh deploy/dev main " in str(pr["run"])


def test_delivery_nothing_pushes_to_main_anywhere() -> None:
    pushes = [line for _, _, line in run_lines() if re.search(r"\bgit\b.*\bpush\b", line)]
    assert pushes == []
    script = (SCRIPTS / "pull-request.sh").read_text()
    (push,) = [line for line in script.splitlines() if line.strip().startswith("push ")]
    assert 'HEAD:refs/heads/${branch}"' in push
    # And every branch it is given is not main.
    for _, _, line in run_lines():
        if line.startswith("scripts/pull-request.sh"):
            branch = shlex.split(line.replace("\\", ""))[1]
            assert branch.startswith(("deploy/", "promote/")), branch


def test_delivery_pull_requests_carry_only_pins() -> None:
    # So merging one changes no image input: the next run reuses the images and opens nothing.
    script = (SCRIPTS / "pull-request.sh").read_text()
    assert 'paths=("${@:-gitops}")' in script
    assert 'git add --all -- "${paths[@]}"' in script
    assert 'git status --porcelain -- "${paths[@]}"' in script
    # The promotion's pull request carries the environment's Application only.
    pr = str(step_with("promote.yml", "promote", "scripts/pull-request.sh")["run"])
    assert pr.rstrip().endswith('"argocd/environments/${ENVIRONMENT}"')


def test_delivery_promotion_is_a_reviewed_gated_pull_request_from_main() -> None:
    promote = workflow("promote.yml")
    assert set(promote.triggers) == {"workflow_dispatch"}
    inputs = promote.triggers["workflow_dispatch"]["inputs"]
    assert sorted(inputs["environment"]["options"]) == PROMOTED
    assert inputs["revision"]["required"] is False
    assert inputs["allow-rollback"]["default"] is False
    job = promote.jobs["promote"]
    assert job["if"] == "github.ref == 'refs/heads/main'"
    (checkout,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout")]
    assert checkout["with"]["fetch-depth"] == 0, "the gate needs main's history"
    gate = step_with("promote.yml", "promote", "-m scripts.promote")
    run = str(gate["run"])
    assert '.venv/bin/python -m scripts.promote "${args[@]}"' in run
    assert gate["env"]["ARGOCD_SERVER"] == "${{ secrets.ARGOCD_SERVER }}"
    assert gate["env"]["ARGOCD_AUTH_TOKEN"] == "${{ secrets.ARGOCD_AUTH_TOKEN }}"
    pr = str(step_with("promote.yml", "promote", "scripts/pull-request.sh")["run"])
    assert '"promote/${ENVIRONMENT}" main' in pr


def _cosign_installs(name: str) -> list[dict[str, Any]]:
    return [s for _, s in workflow(name).steps() if "cosign-installer" in str(s.get("uses", ""))]


def test_delivery_images_are_signed_and_attested_keyless_and_promotion_verifies() -> None:
    publish = workflow("images.yml").jobs["publish"]
    builds = [s for s in publish["steps"] if str(s.get("uses", "")).startswith("docker/build-push")]
    for build in builds:
        assert build["with"]["sbom"] is True and build["with"]["provenance"] == "mode=max"
    functions = str(next(s for s in publish["steps"] if s.get("id") == "functions")["run"])
    assert "--sbom=true --provenance=mode=max" in functions
    sign = step_with("images.yml", "publish", "cosign sign")
    run = str(sign["run"])
    assert 'cosign sign --yes "${image}"' in run
    assert "cosign attest --yes --type spdxjson" in run
    assert "cosign attest --yes --type slsaprovenance" in run
    assert "/.github/workflows/images.yml@${GITHUB_REF}" in run
    assert "https://token.actions.githubusercontent.com" in run
    # Every image: both apps and each function image.
    assert set(sign["env"]) == {"RUNTIME", "DASHBOARD", "FUNCTION_DIGESTS"}
    # The same cosign signs and verifies; promote.py verifies the same attestation types.
    versions = {workflow(n).data["env"]["COSIGN_VERSION"] for n in ("images.yml", "promote.yml")}
    assert len(versions) == 1
    for name in ("images.yml", "promote.yml"):
        (install,) = _cosign_installs(name)
        assert install["with"]["cosign-release"] == "${{ env.COSIGN_VERSION }}"
    checks = (SCRIPTS / "promotion_checks.py").read_text()
    assert 'ATTESTATIONS = ("spdxjson", "slsaprovenance")' in checks
    assert 'workflow: str = "images.yml"' in checks


@pytest.mark.parametrize("name", ["images.yml", "promote.yml"])
def test_delivery_kustomize_is_a_pinned_verified_release(name: str) -> None:
    wf = workflow(name)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", wf.data["env"]["KUSTOMIZE_VERSION"])
    assert re.fullmatch(r"[0-9a-f]{64}", wf.data["env"]["KUSTOMIZE_SHA256"])
    steps = [s for _, s in wf.steps() if "KUSTOMIZE_SHA256" in s.get("run", "")]
    assert len(steps) == 1
    (install,) = steps
    assert "sha256sum --check --strict" in install["run"]
    # Installed before any step runs kustomize, and only the verified binary is on the PATH.
    order = [s.get("run", "") for _, s in wf.steps()]
    # (promote.py renders with it too.)
    first_use = next(
        i for i, r in enumerate(order) if "kustomize build" in r or "-m scripts.promote" in r
    )
    assert order.index(install["run"]) < first_use


def test_delivery_same_kustomize_everywhere() -> None:
    pins = {
        (w.data["env"]["KUSTOMIZE_VERSION"], w.data["env"]["KUSTOMIZE_SHA256"])
        for w in workflows()
        if "KUSTOMIZE_VERSION" in w.data.get("env", {})
    }
    assert len(pins) == 1


def test_delivery_images_are_built_on_a_base_pinned_by_digest() -> None:
    # The Dockerfiles name the base by tag (no digest can be verified without a registry); the
    # workflow resolves it once, builds both images on that digest and records it in them.
    publish = workflow("images.yml").jobs["publish"]
    (base,) = [s for s in publish["steps"] if s.get("id") == "base"]
    run = str(base["run"])
    for dockerfile in DOCKERFILES.values():
        assert str(dockerfile.relative_to(REPO)) in run
        assert "ARG PYTHON_IMAGE=" in dockerfile.read_text()
    assert "sed -n 's/^ARG PYTHON_IMAGE=//p'" in run
    assert "docker buildx imagetools inspect" in run
    assert "^sha256:[0-9a-f]{64}$" in run, "an unresolved digest must fail the job"
    assert 'echo "image=${name}@${digest}"' in run
    builds = [s for s in publish["steps"] if str(s.get("uses", "")).startswith("docker/build-push")]
    assert len(builds) == len(DOCKERFILES)
    for build in builds:
        assert build["with"]["build-args"].splitlines() == [
            "PYTHON_IMAGE=${{ steps.base.outputs.image }}"
        ]
        assert build["with"]["labels"].splitlines() == [
            "org.opencontainers.image.base.name=${{ steps.base.outputs.name }}",
            "org.opencontainers.image.base.digest=${{ steps.base.outputs.digest }}",
        ]
    # Resolved before anything uses it; a new base digest is a new source key (new images).
    order = [s.get("id") for s in publish["steps"]]
    assert order.index("base") < order.index("names")
    names = step_with("images.yml", "publish", "git ls-tree HEAD --")
    assert names["env"] == {"BASE_DIGEST": "${{ steps.base.outputs.digest }}"}
    assert '"${tree}" "${BASE_DIGEST}" "${IMAGE_BUILD}" | git hash-object --stdin' in str(
        names["run"]
    )
    # Images built before they were signed and attested are rebuilt, not reused unsigned.
    assert workflow("images.yml").data["env"]["IMAGE_BUILD"] == "attested-1"


def test_delivery_function_images_are_built_from_the_pinned_runtime_and_registry() -> None:
    publish = workflow("images.yml").jobs["publish"]
    (step,) = [s for s in publish["steps"] if s.get("id") == "functions"]
    run = str(step["run"])
    assert step["env"] == {
        "RUNTIME": "${{ steps.names.outputs.runtime }}",
        "RUNTIME_DIGEST": "${{ steps.runtime-digest.outputs.digest }}",
    }
    # One per folder with requirements.txt, FROM the runtime just pinned, context the repo root.
    assert "apps/functions/*/requirements.txt" in run
    assert "--file apps/runtime/Function.Dockerfile" in run
    assert '--build-arg "RUNTIME_IMAGE=${RUNTIME}@${RUNTIME_DIGEST}"' in run
    assert '--build-arg "FUNCTION=${name}"' in run
    assert run.count("--push .") == 1
    # Named from the registry folder, keyed by what it is built from, digest checked.
    assert 'registry="gitops/registry/serverless-function-${name}.yaml"' in run
    assert '"${RUNTIME_DIGEST}" "${dockerfile}" "${folder}"' in run
    assert "^sha256:[0-9a-f]{64}$" in run
    order = [s.get("id") for s in publish["steps"]]
    assert order.index("runtime-digest") < order.index("functions")
    assert publish["outputs"]["function-digests"] == "${{ steps.functions.outputs.digests }}"


def test_delivery_ci_checks_out_the_history_the_pinned_commits_are_in() -> None:
    # tests/argocd/test_promoted_revisions.py renders prod's and course's pinned commits.
    steps = workflow("ci.yml").jobs["test"]["steps"]
    (checkout,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout")]
    assert checkout["with"]["fetch-depth"] == 0
