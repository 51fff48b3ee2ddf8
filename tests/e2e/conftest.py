"""The kind cluster of the e2e workflow: reachable, or a skip that says why (a failure when the
workflow says E2E_REQUIRED=1, so a broken cluster can never look like a pass)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import E2ESettings, connect

# pytest's own timeout for an e2e test without a timeout marker: above the sum of the waits in
# any such test (tests/e2e/test_timeouts.py checks), so a slow cluster fails with wait_until's
# message (what it waited for, what it saw last) instead of a bare pytest-timeout.
E2E_TEST_TIMEOUT = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every e2e test without its own timeout marker E2E_TEST_TIMEOUT."""
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TEST_TIMEOUT))


@pytest.fixture(scope="session")
def e2e_settings() -> E2ESettings:
    """Names and addresses in the e2e cluster, from E2E_* variables."""
    return E2ESettings.from_env(os.environ)


@pytest.fixture(scope="session")
def kube(e2e_settings: E2ESettings) -> Iterator[Any]:
    """An ApiClient for the cluster, or a skip naming what is missing."""
    api, reason = connect()
    if api is None:
        if e2e_settings.required:
            pytest.fail(f"E2E_REQUIRED is set but {reason}")
        pytest.skip(reason or "no Kubernetes cluster")
    yield api
    api.close()


@pytest.fixture(scope="session")
def core(kube: Any) -> Any:
    """CoreV1Api on the cluster."""
    from kubernetes import client

    return client.CoreV1Api(kube)


@pytest.fixture(scope="session")
def custom(kube: Any) -> Any:
    """CustomObjectsApi on the cluster (Argo CD's Applications)."""
    from kubernetes import client

    return client.CustomObjectsApi(kube)
