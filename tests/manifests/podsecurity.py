"""Kubernetes' restricted Pod Security Standard, as the API server's `enforce: restricted` checks a
pod (https://kubernetes.io/docs/concepts/security/pod-security-standards/, "Restricted"): what a
pod template breaks, as readable lines; an empty list means the namespace admits it."""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]

# Volume types the restricted profile allows; anything else (hostPath, …) is refused.
ALLOWED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _containers(spec: Doc) -> list[Doc]:
    return [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]


def violations(spec: Doc) -> list[str]:
    """What a pod spec breaks in the restricted profile (baseline checks included)."""
    found: list[str] = []
    pod_context = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            found.append(f"{flag} is set")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: type {sorted(kinds)} is not allowed")
    if pod_context.get("runAsUser") == 0:
        found.append("pod runAsUser is 0")
    for ctr in _containers(spec):
        name = ctr["name"]
        context = ctr.get("securityContext") or {}
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if run_as_non_root is not True:
            found.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser") == 0:
            found.append(f"{name}: runAsUser is 0")
        seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
        if seccomp.get("type") not in SECCOMP_TYPES:
            found.append(f"{name}: seccompProfile is not RuntimeDefault or Localhost")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount {context['procMount']}")
        for port in ctr.get("ports", []):
            if port.get("hostPort"):
                found.append(f"{name}: hostPort {port['hostPort']}")
    return found
