"""The promotion gate's questions to the outside world: GitHub (did CI pass at this commit?), the
image registry (does it serve this digest?), cosign (is the image signed and attested by our image
workflow?) and Argo CD (did dev run this commit, Synced and Healthy, long enough?).

Each check either returns a line for the pull request or raises `Refused` with one line saying why.
The HTTP client and the command runner are parameters, so tests answer for GitHub, the registry,
cosign and Argo CD without a network.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

# sha256 of empty content: what the overlays carried before any image was published.
EMPTY_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
GITHUB_API = "https://api.github.com"
OIDC_ISSUER = "https://token.actions.githubusercontent.com"
# What a registry may answer for an image pinned by digest: an index (our images carry their
# SBOM and provenance next to the image) or a single manifest, OCI or Docker's.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
# The cosign attestation types the image workflow attaches (cosign attest --type …).
ATTESTATIONS = ("spdxjson", "slsaprovenance")


class Refused(Exception):
    """The gate refuses the revision; the message is one line."""


class Response(NamedTuple):
    """What an HTTP request answered."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Http(Protocol):
    """Makes one HTTP request (no redirects to follow by the caller)."""

    def __call__(self, method: str, url: str, headers: Mapping[str, str]) -> Response: ...


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def urllib_http(method: str, url: str, headers: Mapping[str, str]) -> Response:
    """The real HTTP client: urllib, 30 s timeout, an error status returned rather than raised."""
    if not url.startswith(("https://", "http://")):
        raise Refused(f"{url}: only http(s) URLs are asked")
    request = urllib.request.Request(url, method=method, headers=dict(headers))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return Response(answer.status, dict(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers.items()), error.read())
    except (urllib.error.URLError, TimeoutError) as error:
        raise Refused(f"{method} {url}: {error}") from error


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """The real command runner (cosign)."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=300)
    except FileNotFoundError as error:
        raise Refused(f"{argv[0]} is not installed: cannot verify signatures") from error


def digest_problem(digest: str) -> str | None:
    """Why a pinned digest cannot be what an environment runs (None when it can be)."""
    if not DIGEST.fullmatch(digest):
        return f"{digest!r} is not a sha256 digest"
    if digest == EMPTY_DIGEST:
        return f"{digest[:19]}… is the digest of empty content, a placeholder"
    if len(set(digest.removeprefix("sha256:"))) == 1:
        return f"{digest[:19]}… is a made-up digest"
    return None


def _json(response: Response, what: str) -> Any:
    if response.status != 200:
        raise Refused(f"{what}: HTTP {response.status}")
    try:
        return json.loads(response.body)
    except ValueError as error:
        raise Refused(f"{what}: not JSON") from error


@dataclass(frozen=True)
class GitHub:
    """GitHub's REST API for one repository (`owner/name`), with an optional token."""

    http: Http
    repository: str
    token: str = ""
    workflow: str = "ci.yml"

    def _get(self, path: str, what: str) -> Any:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{GITHUB_API}/repos/{self.repository}/{path}"
        return _json(self.http("GET", url, headers), what)

    def ci_passed(self, sha: str) -> str:
        """A line naming the successful CI run on main at sha; Refused if there is none."""
        query = urllib.parse.urlencode({"head_sha": sha, "event": "push", "branch": "main"})
        runs = self._get(
            f"actions/workflows/{self.workflow}/runs?{query}", f"CI runs of {sha[:12]}"
        ).get("workflow_runs", [])
        passed = [r for r in runs if r.get("conclusion") == "success"]
        if passed:
            return f"CI passed on main: {passed[0].get('html_url', self.workflow)}"
        states = sorted({str(r.get("conclusion") or r.get("status")) for r in runs}) or ["no run"]
        raise Refused(f"CI did not pass at {sha[:12]} on main ({', '.join(states)})")

    def newest_passed(self) -> str:
        """The newest commit of main whose CI run succeeded."""
        query = urllib.parse.urlencode(
            {"event": "push", "branch": "main", "status": "success", "per_page": "1"}
        )
        runs = self._get(f"actions/workflows/{self.workflow}/runs?{query}", "CI runs on main").get(
            "workflow_runs", []
        )
        if not runs:
            raise Refused("no commit of main has passed CI yet: nothing to promote")
        sha: str = runs[0]["head_sha"]
        return sha


def split_image(image: str) -> tuple[str, str, str]:
    """`host/path@sha256:…` → (host, path, digest)."""
    name, _, digest = image.partition("@")
    host, _, path = name.partition("/")
    if not path or not ("." in host or ":" in host or host == "localhost"):
        raise Refused(f"{image}: not a registry/path@digest reference")
    return host, path, digest


def _bearer_challenge(header: str) -> dict[str, str]:
    return (
        dict(re.findall(r'(\w+)="([^"]*)"', header)) if header.lower().startswith("bearer") else {}
    )


@dataclass(frozen=True)
class Registry:
    """An OCI distribution registry, asked anonymously (the packages are public)."""

    http: Http

    def serves(self, image: str) -> None:
        """Refused unless the registry serves the manifest of image (`host/path@digest`)."""
        host, path, digest = split_image(image)
        url = f"https://{host}/v2/{path}/manifests/{digest}"
        headers = {"Accept": MANIFEST_TYPES}
        answer = self.http("HEAD", url, headers)
        if answer.status == 401:
            challenge = _bearer_challenge(_header(answer.headers, "www-authenticate"))
            if "realm" in challenge:
                params = {k: v for k, v in challenge.items() if k in ("service", "scope")}
                params.setdefault("scope", f"repository:{path}:pull")
                token_url = f"{challenge['realm']}?{urllib.parse.urlencode(params)}"
                token = _json(self.http("GET", token_url, {}), f"token for {host}/{path}")
                bearer = token.get("token") or token.get("access_token") or ""
                answer = self.http("HEAD", url, {**headers, "Authorization": f"Bearer {bearer}"})
        if answer.status == 404:
            raise Refused(f"{image}: the registry does not serve this digest (not published)")
        if answer.status != 200:
            raise Refused(f"{image}: the registry answered HTTP {answer.status}")
        served = _header(answer.headers, "docker-content-digest")
        if served and served != digest:
            raise Refused(f"{image}: the registry serves {served} under this digest")


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


@dataclass(frozen=True)
class Cosign:
    """`cosign verify` and `cosign verify-attestation` against our image workflow's identity."""

    run: Runner
    identity: str
    issuer: str = OIDC_ISSUER

    def verified(self, image: str) -> None:
        """Refused unless image is signed, and attested (SBOM, provenance), by the identity."""
        keyless = [
            "--certificate-identity",
            self.identity,
            "--certificate-oidc-issuer",
            self.issuer,
        ]
        checks = [("signed", ["cosign", "verify", *keyless, image])]
        checks += [
            (
                f"attested ({kind})",
                ["cosign", "verify-attestation", "--type", kind, *keyless, image],
            )
            for kind in ATTESTATIONS
        ]
        for what, argv in checks:
            result = self.run(argv)
            if result.returncode != 0:
                reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise Refused(f"{image}: not {what} by {self.identity}: {reason}")


def workflow_identity(repository: str, workflow: str = "images.yml") -> str:
    """The certificate identity of our image workflow's keyless signatures (a reusable workflow
    signs as itself, at the ref it was called from)."""
    return f"https://github.com/{repository}/.github/workflows/{workflow}@refs/heads/main"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class ArgoCD:
    """Argo CD's API with a read-only token: what dev runs and ran."""

    http: Http
    server: str
    token: str
    application: str = "serverless-dev"

    def _app(self) -> Any:
        base = self.server if "://" in self.server else f"https://{self.server}"
        url = f"{base.rstrip('/')}/api/v1/applications/{self.application}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        return _json(self.http("GET", url, headers), f"Argo CD application {self.application}")

    def current(self) -> str:
        """The revision dev runs now (its last sync)."""
        revision: str = self._app().get("status", {}).get("sync", {}).get("revision", "")
        if not revision:
            raise Refused(f"Argo CD reports no synced revision for {self.application}")
        return revision

    def ran(self, sha: str, minutes: int, now: datetime) -> str:
        """A line saying dev ran sha Synced and Healthy for `minutes`; Refused otherwise."""
        status = self._app().get("status", {})
        history = sorted(status.get("history") or [], key=lambda h: _time(h["deployedAt"]))
        runs = [i for i, h in enumerate(history) if h.get("revision") == sha]
        if not runs:
            raise Refused(f"{self.application} never ran {sha[:12]} (Argo CD's sync history)")
        last = runs[-1]
        since = _time(history[last]["deployedAt"])
        until = _time(history[last + 1]["deployedAt"]) if last + 1 < len(history) else now
        if last + 1 == len(history):
            sync = status.get("sync", {}).get("status")
            health = status.get("health", {}).get("status")
            if (sync, health) != ("Synced", "Healthy"):
                raise Refused(f"{self.application} at {sha[:12]} is {sync} and {health}")
        if until - since < timedelta(minutes=minutes):
            ran = int((until - since).total_seconds() // 60)
            raise Refused(
                f"{self.application} ran {sha[:12]} for {ran} min, less than {minutes} min"
            )
        return f"{self.application} ran {sha[:12]} from {since.isoformat()} (Synced, Healthy)"
