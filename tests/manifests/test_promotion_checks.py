"""The gate's real HTTP client against a registry served on 127.0.0.1: the anonymous token
dance, the manifest found, a digest not served, and a server that is not there; and the real
command runner without cosign."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scripts.promotion_checks import (
    Cosign,
    Refused,
    Registry,
    Response,
    run_command,
    urllib_http,
    workflow_identity,
)

PUBLISHED = "sha256:" + "ab12" * 16
MISSING = "sha256:" + "cd34" * 16


class FakeRegistry(BaseHTTPRequestHandler):
    """Answers like GHCR: 401 with a Bearer challenge, a token, then the manifest by digest."""

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        if self.path.startswith("/token?"):
            body = json.dumps({"token": "anonymous"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.end_headers()

    def do_HEAD(self) -> None:
        host = self.headers["Host"]
        if self.headers.get("Authorization") != "Bearer anonymous":
            self.send_response(401)
            realm = f'Bearer realm="http://{host}/token",service="registry"'
            self.send_header("WWW-Authenticate", realm)
            self.end_headers()
            return
        assert "application/vnd.oci.image.index.v1+json" in self.headers["Accept"]
        digest = self.path.rsplit("/", 1)[-1]
        self.send_response(200 if digest == PUBLISHED else 404)
        self.send_header("Docker-Content-Digest", digest)
        self.end_headers()


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def plain_http(method: str, url: str, headers: Mapping[str, str]) -> Response:
    """The real client, with the registry's https URL served over http on loopback."""
    return urllib_http(method, url.replace("https://", "http://", 1), headers)


def test_registry_serves_a_published_digest_after_the_token_dance(registry: str) -> None:
    Registry(plain_http).serves(f"{registry}/acme/serverless-runtime@{PUBLISHED}")


def test_registry_refuses_a_digest_it_does_not_serve(registry: str) -> None:
    with pytest.raises(Refused, match="does not serve this digest"):
        Registry(plain_http).serves(f"{registry}/acme/serverless-runtime@{MISSING}")


def test_registry_that_does_not_answer_is_a_refusal_not_a_crash() -> None:
    with pytest.raises(Refused, match=r"127\.0\.0\.1:9/"):
        Registry(plain_http).serves(f"127.0.0.1:9/acme/serverless-runtime@{PUBLISHED}")


def test_cosign_missing_is_a_refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    cosign = Cosign(run_command, workflow_identity("acme/serverless"))
    with pytest.raises(Refused, match="cosign is not installed"):
        cosign.verified(f"ghcr.io/acme/serverless-runtime@{PUBLISHED}")
