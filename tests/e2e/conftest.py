"""The kind cluster of the e2e workflow: reachable, or a skip that says why (a failure when the
workflow says E2E_REQUIRED=1, so a broken cluster can never look like a pass)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import E2ESettings, connect


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
