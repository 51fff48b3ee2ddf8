"""Argo CD's REST API as a CI pipeline uses it: log in, get a project role token, sync.

Only the few calls the RBAC boundary tests make; every answer is (HTTP status, parsed body)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArgoCDApi:
    """One Argo CD API server, called with or without a bearer token."""

    url: str
    token: str | None = None

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        """(status, JSON body or text); a connection error gives status 0 and its reason."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        # argocd-server's certificate is self-signed, and the address is a local port-forward.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                return int(response.status), _parse(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), _parse(error.read())
        except (urllib.error.URLError, OSError) as error:
            return 0, str(error)

    def as_token(self, token: str) -> ArgoCDApi:
        """The same server, called with token."""
        return ArgoCDApi(self.url, token)

    def login(self, username: str, password: str) -> ArgoCDApi:
        """A session for a local user (the install's admin)."""
        status, body = self.call(
            "POST", "/api/v1/session", {"username": username, "password": password}
        )
        if status != 200:
            raise AssertionError(f"login as {username} failed: {status} {body}")
        return self.as_token(str(body["token"]))

    def project_token(self, project: str, role: str, expires_in: int = 3600) -> str:
        """A JWT for a project role, as `argocd proj role create-token --expires-in` makes one:
        never one without an expiry (argocd/README.md, "Who may do what")."""
        status, body = self.call(
            "POST",
            f"/api/v1/projects/{project}/roles/{role}/token",
            {
                "project": project,
                "role": role,
                "description": "e2e: the RBAC boundary",
                "expiresIn": expires_in,
            },
        )
        if status != 200:
            raise AssertionError(f"token for {project}/{role}: {status} {body}")
        return str(body["token"])

    def sync(self, application: str) -> tuple[int, Any]:
        """Ask Argo CD to sync an Application now."""
        return self.call("POST", f"/api/v1/applications/{application}/sync", {})

    def get(self, application: str) -> tuple[int, Any]:
        """One Application as the API shows it."""
        return self.call("GET", f"/api/v1/applications/{application}")


def denied(status: int, body: object) -> bool:
    """Whether an answer is Argo CD's "permission denied" (gRPC PermissionDenied → 403)."""
    return status == 403 and "permission denied" in json.dumps(body).lower()


def _parse(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
