"""The e2e's Argo CD API client against a stand-in server, and the RBAC commit the e2e makes:
what can be checked without a cluster."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.argocd.policy import parse_csv
from tests.e2e.argocd_api import ArgoCDApi, denied
from tests.e2e.function_change import RBAC_FILE
from tests.e2e.served_repo import REPO

DENIED = {"error": "permission denied", "code": 7, "message": "permission denied"}


class FakeArgoCD(BaseHTTPRequestHandler):
    """Answers like Argo CD: a session for admin, a project token, sync only with that token."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        auth = self.headers.get("Authorization", "")
        if self.path == "/api/v1/session":
            ok = body == {"username": "admin", "password": "pw"}
            self.answer(200 if ok else 401, {"token": "admin-jwt"} if ok else DENIED)
        elif self.path == "/api/v1/projects/serverless-dev/roles/ci/token":
            # A token that never expires is refused here: the e2e makes the kind it documents.
            ok = (
                auth == "Bearer admin-jwt" and body["role"] == "ci" and body.get("expiresIn", 0) > 0
            )
            self.answer(200 if ok else 403, {"token": "ci-jwt"} if ok else DENIED)
        elif self.path == "/api/v1/applications/serverless-dev/sync" and auth == "Bearer ci-jwt":
            self.answer(200, {"metadata": {"name": "serverless-dev"}})
        else:
            self.answer(403, DENIED)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeArgoCD)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_argocd_api_project_token_syncs_only_its_application(server: str) -> None:
    admin = ArgoCDApi(server).login("admin", "pw")
    ci = admin.as_token(admin.project_token("serverless-dev", "ci"))
    assert ci.sync("serverless-dev")[0] == 200
    assert denied(*ci.sync("serverless-root"))
    assert not denied(*ci.sync("serverless-dev"))


def test_argocd_api_login_failure_is_an_error(server: str) -> None:
    with pytest.raises(AssertionError, match="login as admin failed: 401"):
        ArgoCDApi(server).login("admin", "wrong")


def test_argocd_api_unreachable_server_is_status_zero() -> None:
    status, reason = ArgoCDApi("https://127.0.0.1:9").call("GET", "/api/version")
    assert status == 0 and reason


def test_argocd_api_denied_needs_403_and_the_message() -> None:
    assert denied(403, DENIED)
    assert not denied(400, {"message": "another operation is already in progress"})
    assert not denied(403, "forbidden by a proxy")


def test_argocd_api_rbac_commit_keeps_a_valid_policy(tmp_path: Path) -> None:
    # The e2e appends an indented comment to the RBAC file: it must stay inside the policy.
    copy = tmp_path / "rbac.yaml"
    copy.write_text((REPO / RBAC_FILE).read_text() + "    # e2e marker\n")
    data = yaml.safe_load(copy.read_text())["data"]
    assert data["policy.serverless.csv"].rstrip().endswith("# e2e marker")
    assert parse_csv(data["policy.serverless.csv"])
