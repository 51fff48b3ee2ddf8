"""gitops/components/verify-images: the optional Kyverno policy renders, asks for what the image
workflow signs and attests, under this repository's identity and registry owner, and no overlay
turns it on by default."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from scripts.promotion_checks import ATTESTATIONS, OIDC_ISSUER, workflow_identity
from tests.manifests.images import registry_names
from tests.manifests.rendered import GITOPS, REPO_ROOT, kustomize_build

COMPONENT = GITOPS / "components" / "verify-images"
# cosign attest --type NAME records this predicate type (what Kyverno's `type` matches).
PREDICATE_TYPES = {
    "spdxjson": "https://spdx.dev/Document",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
}


def repository() -> str:
    url = yaml.safe_load((REPO_ROOT / "argocd/repository/repository.yaml").read_text())["data"]
    return str(url["url"]).removeprefix("https://github.com/").removesuffix(".git")


def test_verify_images_renders_a_kyverno_policy_for_the_image_workflow(tmp_path: Path) -> None:
    shutil.copytree(COMPONENT, tmp_path / "verify-images")
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "components:\n  - ../verify-images\n"
    )
    (policy,) = kustomize_build(tmp_path / "cluster")
    assert (policy["apiVersion"], policy["kind"]) == ("kyverno.io/v1", "ClusterPolicy")
    (rule,) = policy["spec"]["rules"]
    namespaces = rule["match"]["any"][0]["resources"]["namespaces"]
    assert sorted(namespaces) == ["serverless-course", "serverless-dev", "serverless-prod"]
    (verify,) = rule["verifyImages"]
    owners = {name.rsplit("/", 1)[0] for name in registry_names().values()}
    assert verify["imageReferences"] == [f"{owner}/*" for owner in sorted(owners)]
    assert verify["failureAction"] == "Enforce" and verify["required"] is True
    assert verify["verifyDigest"] is True and verify["mutateDigest"] is False
    identity = {"subject": workflow_identity(repository()), "issuer": OIDC_ISSUER}
    signers = [verify["attestors"]] + [a["attestors"] for a in verify["attestations"]]
    for attestors in signers:
        (entry,) = attestors[0]["entries"]
        assert {k: entry["keyless"][k] for k in identity} == identity
    assert [a["type"] for a in verify["attestations"]] == [
        PREDICATE_TYPES[kind] for kind in ATTESTATIONS
    ]


def test_verify_images_is_not_enabled_by_default() -> None:
    # Enabling it is a decision per cluster (Kyverno installed, the platform allowed to create
    # it): nothing in gitops/ or argocd/ lists the component.
    listing = [
        p
        for folder in ("gitops", "argocd")
        for p in (REPO_ROOT / folder).rglob("kustomization.yaml")
        if "verify-images" in p.read_text() and COMPONENT not in p.parents
    ]
    assert listing == []
