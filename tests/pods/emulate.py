"""Run one container of a rendered pod on this machine, the way the kubelet would lay it out.

The container's command comes from the pod spec and the image's Dockerfile (Kubernetes rules for
command/args over ENTRYPOINT/CMD). It runs under bubblewrap with the host's root read-only, the
repository's virtualenv at /opt/venv (where the images keep theirs), ConfigMap volumes laid out
like the kubelet's (`..data` symlink for directory mounts, the file itself for `subPath`), a tmpfs
for each emptyDir, and the pod's uid and gid with no capabilities. The environment is the pod's,
resolved from the rendered ConfigMaps and Secrets, plus the image's ENV.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from tests.manifests.rendered import (
    REPO_ROOT,
    Doc,
    configmap_volume_files,
    pod_spec,
    resolve_env,
)
from tests.pods.dockerfile import ImageConfig, config_for_image

VENV = Path(sys.prefix)
# When the kubelet last wrote the volume: the timestamped directory `..data` points to.
_DATA_DIR = "..2026_01_01_00_00_00.000000001"
_SIZE_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def bwrap() -> str | None:
    """Path of bubblewrap, or None."""
    return shutil.which("bwrap")


def container_command(ctr: Doc, image: ImageConfig) -> list[str]:
    """command/args over the image's ENTRYPOINT/CMD, as Kubernetes combines them."""
    if "command" in ctr:
        return [*ctr["command"], *ctr.get("args", [])]
    return [*image.entrypoint, *ctr.get("args", image.cmd)]


def _quantity_bytes(quantity: str) -> int:
    for suffix, factor in _SIZE_UNITS.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def _ids(spec: Doc, ctr: Doc, image: ImageConfig) -> tuple[int, int]:
    """uid and gid: the container's securityContext, else the pod's, else the image's USER."""
    pod_ctx, ctr_ctx = spec.get("securityContext", {}), ctr.get("securityContext", {})
    user, _, group = (image.user or "0").partition(":")
    uid = ctr_ctx.get("runAsUser", pod_ctx.get("runAsUser", int(user)))
    gid = ctr_ctx.get("runAsGroup", pod_ctx.get("runAsGroup", int(group or uid)))
    return int(uid), int(gid)


def write_configmap_volume(target: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    """Lay out a ConfigMap volume like the kubelet: files in a timestamped dir behind `..data`."""
    data_dir = target / _DATA_DIR
    data_dir.mkdir(parents=True)
    for relative, (content, mode) in files.items():
        path = data_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    (target / "..data").symlink_to(_DATA_DIR)
    for top in {PurePosixPath(relative).parts[0] for relative in files}:
        (target / top).symlink_to(f"..data/{top}")
    target.chmod(0o755)


def _closed_ancestor(path: Path) -> Path | None:
    """The outermost directory above PATH that other users cannot enter, if any."""
    for ancestor in reversed(path.parents):
        if ancestor != Path("/") and not ancestor.stat().st_mode & 0o001:
            return ancestor
    return None


def _nearest_existing(path: PurePosixPath) -> PurePosixPath:
    while not Path(path).exists():
        path = path.parent
    return path


class EmulatedPod:
    """One container of a pod, run under bubblewrap; use as a context manager."""

    def __init__(
        self,
        workload: Doc,
        container_name: str,
        docs: list[Doc],
        workdir: Path,
        overrides: Mapping[str, str] | None = None,
        args: Callable[[list[str]], list[str]] | None = None,
        binds: Mapping[str, Path] | None = None,
    ) -> None:
        self.spec = pod_spec(workload)
        # Extra read-only paths in the container (its path -> the host's), for what an image
        # would hold besides the venv.
        self.binds = dict(binds or {})
        self.ctr = next(c for c in self.spec["containers"] if c["name"] == container_name)
        self.docs = docs
        self.workdir = workdir
        self.image = config_for_image(self.ctr["image"])
        command = container_command(self.ctr, self.image)
        self.command = args(command) if args is not None else command
        self.env = {
            **self.image.env,
            # A container runtime's HOME for a uid without a passwd entry.
            "HOME": "/",
            "HOSTNAME": workload["metadata"]["name"],
            **resolve_env(self.ctr, docs),
            **(overrides or {}),
        }
        self.log_path = workdir / "container.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        """The bwrap command line that runs the container."""
        program = bwrap()
        assert program is not None
        uid, gid = _ids(self.spec, self.ctr, self.image)
        binds: list[str] = []
        destinations: list[PurePosixPath] = [PurePosixPath("/opt/venv")]
        binds += ["--ro-bind", str(VENV), "/opt/venv"]
        volumes = {volume["name"]: volume for volume in self.spec.get("volumes", [])}
        for mount in self.ctr.get("volumeMounts", []):
            destination = PurePosixPath(mount["mountPath"])
            destinations.append(destination)
            binds += self._volume_binds(volumes[mount["name"]], mount)
        for destination_path, source in self.binds.items():
            destinations.append(PurePosixPath(destination_path))
            binds += ["--ro-bind", str(source), destination_path]
        # A mount point that the host lacks needs a writable parent to be created in: a tmpfs
        # over its nearest existing ancestor (the image's own /opt would hold only its venv).
        parents = sorted(
            {_nearest_existing(d.parent) for d in destinations if not Path(d).exists()},
            key=lambda p: len(p.parts),
        )
        assert PurePosixPath("/") not in parents, "a mount path right under / is not emulated"
        tmpfs: list[PurePosixPath] = []
        for parent in parents:
            if not any(parent.is_relative_to(done) for done in tmpfs):
                tmpfs.append(parent)
        # The pod's uid must reach the interpreter and the repository (the venv links into both);
        # a closed ancestor such as /root is replaced by an open tmpfs holding just those paths.
        keep = [REPO_ROOT, Path(os.path.realpath(VENV / "bin" / "python")).parent.parent]
        for path in keep:
            closed = _closed_ancestor(path)
            if closed is not None and PurePosixPath(closed) not in tmpfs:
                tmpfs.append(PurePosixPath(closed))
        layout = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        # Container runtimes give every pod a world-writable 64 MiB /dev/shm.
        layout += ["--perms", "1777", "--size", str(64 * 2**20), "--tmpfs", "/dev/shm"]
        for directory in tmpfs:
            layout += ["--tmpfs", str(directory)]
        for path in keep:
            under = next((d for d in tmpfs if PurePosixPath(path).is_relative_to(d)), None)
            if under is None:
                continue
            # Open directories down to the kept path (bwrap would create them closed).
            for step in reversed(PurePosixPath(path).parents):
                if step.is_relative_to(under) and step != under:
                    layout += ["--perms", "0755", "--dir", str(step)]
            layout += ["--ro-bind", str(path), str(path)]
        layout += binds
        for directory in tmpfs:
            layout += ["--remount-ro", str(directory)]
        if os.geteuid() == 0:
            # bwrap as root: switch to the pod's ids for real, dropping every capability.
            identity = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
            identity += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
            identity += ["--inh-caps=-all", "--bounding-set=-all", "--"]
        else:
            identity = ["--unshare-user", "--uid", str(uid), "--gid", str(gid), "--"]
        return [
            program,
            "--die-with-parent",
            "--unshare-ipc",
            "--unshare-uts",
            "--hostname",
            self.env["HOSTNAME"],
            "--chdir",
            "/",
            *layout,
            *identity,
            *self.command,
        ]

    def _volume_binds(self, volume: Doc, mount: Doc) -> list[str]:
        destination = mount["mountPath"]
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            sized = ["--size", str(_quantity_bytes(size))] if size else []
            # The kubelet creates emptyDirs world-writable.
            return ["--perms", "0777", *sized, "--tmpfs", destination]
        if "configMap" not in volume:
            raise NotImplementedError(f"volume {volume['name']}: only configMap and emptyDir")
        source = self.workdir / "volumes" / volume["name"]
        if not source.exists():
            write_configmap_volume(source, configmap_volume_files(volume, self.docs))
        if "subPath" in mount:
            # The kubelet bind-mounts the resolved file: later ConfigMap updates never show.
            real = (source / mount["subPath"]).resolve(strict=True)
            return ["--ro-bind", str(real), destination]
        return ["--ro-bind", str(source), destination]

    def start(self) -> EmulatedPod:
        """Start the container; its output goes to container.log in the work dir."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.argv(),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def logs(self) -> str:
        """What the container printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def exited(self) -> int | None:
        """The exit code once the container has stopped, else None."""
        assert self._proc is not None
        return self._proc.poll()

    def _main_pid(self) -> int | None:
        # bwrap waits for one child: the container's PID 1 (setpriv execs the command).
        assert self._proc is not None
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def stop(self, grace: float = 20.0) -> int:
        """SIGTERM the container's main process like the kubelet, SIGKILL after the grace period."""
        assert self._proc is not None
        if self._proc.poll() is None:
            pid = self._main_pid()
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
            try:
                return self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        return self._proc.wait(timeout=10)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Poll CHECK until it returns something truthy; fail with the logs if the pod stops."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            code = self.exited()
            if code is not None:
                raise AssertionError(f"{what}: the container exited with {code}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s\n{self.logs()}")
            time.sleep(0.1)

    def __enter__(self) -> EmulatedPod:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.stop()
