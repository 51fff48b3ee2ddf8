"""The delivery path on a real cluster (kind + Argo CD, .github/workflows/e2e.yml): what Argo CD
synced from Git runs, computes, is visible in the dashboard, and follows a new commit."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest

from scripts.function_folders import parse_function_env
from tests.e2e.cluster import (
    E2ESettings,
    application,
    error_conditions,
    exec_in_pod,
    fetch,
    has_resource_monitor_keys,
    is_dash_page,
    read_output,
    ready_pods,
    request_refresh,
    sync_and_health,
    wait_until,
)
from tests.e2e.function_change import MARKER_KEY, commit_script

# Every test here needs the cluster: without one, the `kube` fixture skips (or fails when the
# workflow sets E2E_REQUIRED) before anything waits.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("kube")]

# What the kind cluster's root creates (tests/e2e/test_boundary.py checks there is nothing else).
APPLICATIONS = ("serverless-root", "serverless-platform", "serverless-dev")


def test_gitops_dev_application_synced_and_healthy(custom: Any, e2e_settings: E2ESettings) -> None:
    wait_until(
        lambda: sync_and_health(application(custom, e2e_settings, e2e_settings.application)),
        timeout=300,
        what=f"{e2e_settings.application} Synced and Healthy",
        accept=lambda state: state == ("Synced", "Healthy"),
    )


@pytest.mark.parametrize("name", APPLICATIONS)
def test_gitops_every_application_is_permitted_and_synced(
    custom: Any, e2e_settings: E2ESettings, name: str
) -> None:
    # The root created it, and its project let Argo CD apply every resource: no permission error.
    app = wait_until(
        lambda: application(custom, e2e_settings, name),
        timeout=300,
        what=f"{name} Synced",
        accept=lambda app: sync_and_health(app)[0] == "Synced",
    )
    assert error_conditions(app) == []


def test_gitops_runtime_pod_ready(core: Any, e2e_settings: E2ESettings) -> None:
    wait_until(
        lambda: ready_pods(core, e2e_settings.namespace, e2e_settings.runtime_selector),
        timeout=180,
        what="a ready runtime pod",
    )


def complete(output: dict[str, Any] | None) -> bool:
    """Whether an output was written and carries every resource-monitor key."""
    return output is not None and has_resource_monitor_keys(output)


def test_gitops_output_holds_resource_monitor_keys_and_changes(
    core: Any, e2e_settings: E2ESettings
) -> None:
    first = wait_until(
        lambda: read_output(core, e2e_settings),
        timeout=180,
        what=f"{e2e_settings.output_key} with the resource-monitor keys",
        accept=complete,
    )
    assert first is not None
    # The collector writes every 5 s; each new input gives an output with its timestamp.
    later = wait_until(
        lambda: read_output(core, e2e_settings),
        timeout=90,
        what="a newer output",
        accept=lambda o: complete(o) and o is not None and o["timestamp"] != first["timestamp"],
    )
    assert later is not None and later["timestamp"] > first["timestamp"]


def _output_keys() -> dict[str, str]:
    """Each function folder of this tree and the output key its function.env names."""
    folders = sorted(Path(__file__).parents[2].glob("apps/functions/*/function.env"))
    return {f.parent.name: parse_function_env(f)["REDIS_OUTPUT_KEY"] for f in folders}


@pytest.mark.parametrize(("function", "output_key"), sorted(_output_keys().items()))
def test_gitops_every_function_folder_writes_its_output(
    core: Any, e2e_settings: E2ESettings, function: str, output_key: str
) -> None:
    # Every folder of apps/functions runs in dev, each in its own Deployment and image (cpu-stats
    # in its numpy image) and writes a JSON object to its own key.
    settings = dataclasses.replace(e2e_settings, output_key=output_key)
    output = wait_until(
        lambda: read_output(core, settings),
        timeout=240,
        what=f"{function}'s output at {output_key}",
        accept=lambda o: isinstance(o, dict) and bool(o),
    )
    assert isinstance(output, dict) and output


def test_gitops_dashboard_page_served_on_the_node_port(e2e_settings: E2ESettings) -> None:
    wait_until(
        lambda: fetch(e2e_settings.dashboard_url),
        timeout=180,
        what=f"the dashboard page at {e2e_settings.dashboard_url}",
        accept=lambda response: response[0] == 200 and is_dash_page(response[1]),
    )
    status, _ = fetch(e2e_settings.dashboard_url.rstrip("/") + "/healthz")
    assert status == 200


@pytest.mark.timeout(900)
def test_gitops_function_change_in_git_reaches_the_output(
    core: Any, custom: Any, e2e_settings: E2ESettings
) -> None:
    marker = uuid.uuid4().hex[:12]
    git_pod, *_ = wait_until(
        lambda: ready_pods(core, e2e_settings.git_namespace, e2e_settings.git_selector),
        timeout=60,
        what="the git server",
    )
    code, out, err = exec_in_pod(
        core, e2e_settings.git_namespace, git_pod, ["sh", "-c", commit_script(marker)]
    )
    assert code == 0, err
    commit = out.strip().splitlines()[-1]

    # What the GitHub webhook does on a push; without it Argo CD's poll would find it too.
    request_refresh(custom, e2e_settings, e2e_settings.application)
    wait_until(
        lambda: (
            (
                (application(custom, e2e_settings, e2e_settings.application) or {}).get("status")
                or {}
            )
            .get("sync", {})
            .get("revision")
        ),
        timeout=300,
        what=f"Argo CD to sync commit {commit}",
        accept=lambda revision: revision == commit,
    )
    output = wait_until(
        lambda: read_output(core, e2e_settings),
        timeout=300,
        what=f"an output with {MARKER_KEY}={marker}",
        accept=lambda o: o is not None and o.get(MARKER_KEY) == marker,
    )
    assert complete(output)
