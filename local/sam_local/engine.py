"""The machine side of `make sam-local`: Debian packages, the Docker engine, arm64 emulation.

Nothing here talks to anything but Debian's package mirror (apt-get) and the local Docker engine.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

ENGINE_START_SECONDS = 90
ENGINE_STOP_SECONDS = 30
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
QEMU_AARCH64_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")  # shipped by Debian's qemu-user-static
# The CPU qemu emulates (QEMU_CPU in the containers): Graviton2's core, which Lambda's arm64 runs on. qemu's default
# "max" CPU has pointer authentication, which it computes in software: Debian's arm64 code signs every return address,
# so Python ran ~30 times slower than as a neoverse-n1, where those instructions are no-ops as on Graviton2.
EMULATED_CPU = "neoverse-n1"


class SamLocalError(RuntimeError):
    """A step of `make sam-local` failed; the message says which and what to do."""


def say(message: str) -> None:
    print(f"sam-local: {message}", flush=True)


def run(
    command: Sequence[str], *, timeout: float | None = None, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, output captured; a failure raises SamLocalError with the command's last lines."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            list(command), capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except FileNotFoundError as error:
        raise SamLocalError(f"{command[0]} is not installed") from error
    except subprocess.TimeoutExpired as error:
        raise SamLocalError(f"`{' '.join(command[:3])} ...` did not finish within {timeout:.0f} s") from error
    if check and result.returncode != 0:
        raise SamLocalError(f"`{' '.join(command[:4])} ...` failed (exit {result.returncode}):\n{tail(result)}")
    return result


def tail(result: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    text = ((result.stdout or "") + (result.stderr or "")).strip().splitlines()
    return "\n".join("    " + line for line in text[-lines:])


def host_arch() -> str:
    """The host in Lambda's words: x86_64 or arm64."""
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else machine


# --------------------------------------------------------------------------------------------------------------------
# Debian packages
# --------------------------------------------------------------------------------------------------------------------

_apt_updated = False


def apt_install(packages: Sequence[str], why: str) -> None:
    """Install Debian packages that are missing (dpkg's view), with one `apt-get update` per run."""
    global _apt_updated
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SamLocalError(f"{why} needs the Debian packages {' '.join(missing)}; install them as root and retry")
    say(f"installing {' '.join(missing)} from Debian ({why})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        run(["apt-get", "update", "-qq"], timeout=600, env=env)
        _apt_updated = True
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], timeout=900, env=env)


def _dpkg_installed(package: str) -> bool:
    dpkg_query = shutil.which("dpkg-query") or "/usr/bin/dpkg-query"
    result = subprocess.run(  # noqa: S603 - dpkg-query, fixed arguments
        [dpkg_query, "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and result.stdout.strip().endswith("installed")


# --------------------------------------------------------------------------------------------------------------------
# The Docker engine
# --------------------------------------------------------------------------------------------------------------------


def docker_cli() -> str:
    docker = shutil.which("docker")
    if docker is None:
        apt_install(["docker.io"], "the docker command")
        docker = shutil.which("docker")
    if docker is None:
        raise SamLocalError("no docker command after installing docker.io")
    return docker


def engine_version(docker: str) -> str | None:
    """The running engine's version, or None when no engine answers."""
    try:
        result = subprocess.run(  # noqa: S603 - the docker CLI, fixed arguments
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True, text=True, timeout=20, check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    version = result.stdout.strip()
    return version if result.returncode == 0 and version else None


class DockerEngine:
    """Uses the running Docker engine, or starts `dockerd` for the run and stops it afterwards (only the one it
    started). ``keep`` leaves a started engine running (faster reruns by hand)."""

    def __init__(self, log_path: Path, *, keep: bool = False) -> None:
        self.log_path = log_path
        self.keep = keep
        self.docker = ""
        self.version = ""
        self.started: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DockerEngine:
        self.docker = docker_cli()
        running = engine_version(self.docker)
        if running:
            self.version = running
            say(f"Docker engine {running} is running: using it (it stays running afterwards)")
            return self
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            apt_install(["docker.io"], "a Docker engine")
            dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise SamLocalError("no dockerd after installing docker.io")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        say(f"no Docker engine runs: starting `dockerd --iptables=false --bridge=none` (log: {self.log_path})")
        with self.log_path.open("wb") as log:
            # In a session of its own, so that a Ctrl-C reaches this script, which then stops it (__exit__).
            self.started = subprocess.Popen(  # noqa: S603 - dockerd, fixed arguments
                [dockerd, "--iptables=false", "--bridge=none"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + ENGINE_START_SECONDS
        while time.monotonic() < deadline:
            if self.started.poll() is not None:
                log_tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:]
                self.started = None
                raise SamLocalError("dockerd exited at start:\n" + "\n".join("    " + x for x in log_tail))
            version = engine_version(self.docker)
            if version:
                self.version = version
                say(f"Docker engine {version} started (pid {self.started.pid})")
                return self
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise SamLocalError(f"dockerd did not answer within {ENGINE_START_SECONDS} s; see {self.log_path}")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.started is None:
            return
        process, self.started = self.started, None
        if self.keep:
            say(f"leaving the Docker engine it started running (pid {process.pid}, --keep-engine)")
            return
        process.terminate()
        try:
            process.wait(timeout=ENGINE_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        say(f"stopped the Docker engine it started (pid {process.pid})")

    def cmd(self, *args: str, timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([self.docker, *args], timeout=timeout, check=check)

    def image_ids(self, repository: str) -> set[str]:
        listed = self.cmd("images", "--no-trunc", "--format", "{{.ID}}", repository, check=False)
        return set(listed.stdout.split())

    def remove_untagged(self, image_ids: set[str]) -> None:
        """Remove those of these images that lost their tag since (SAM CLI built its image anew over them)."""
        for image_id in image_ids:
            tags = self.cmd("image", "inspect", "--format", "{{len .RepoTags}}", image_id, check=False)
            if tags.returncode == 0 and tags.stdout.strip() == "0":
                self.cmd("rmi", image_id, check=False)


# --------------------------------------------------------------------------------------------------------------------
# arm64 on an x86_64 host
# --------------------------------------------------------------------------------------------------------------------


def enable_arm64_emulation() -> str | None:
    """Make the kernel run aarch64 binaries through qemu (binfmt_misc, flag F so containers use it too).

    Returns None when it is enabled, else why it cannot be (the caller then falls back to x86_64)."""
    handler = BINFMT_DIR / "qemu-aarch64"
    if handler.exists() and handler.read_text().startswith("enabled"):
        return None
    if sys.platform != "linux":
        return "arm64 emulation needs Linux binfmt_misc"
    try:
        apt_install(["qemu-user-static"], "arm64 emulation")
    except SamLocalError as error:
        return str(error)
    if not (BINFMT_DIR / "register").exists():
        mounted = run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], check=False)
        if mounted.returncode != 0:
            return f"cannot mount binfmt_misc:\n{tail(mounted)}"
    if not handler.exists():
        if not QEMU_AARCH64_CONF.exists():
            return f"{QEMU_AARCH64_CONF} is missing (qemu-user-static)"
        try:
            (BINFMT_DIR / "register").write_text(QEMU_AARCH64_CONF.read_text().strip() + "\n")
        except OSError as error:
            return f"cannot register qemu-aarch64 with binfmt_misc: {error}"
    else:
        try:
            handler.write_text("1")  # registered but disabled
        except OSError as error:
            return f"cannot enable qemu-aarch64 in binfmt_misc: {error}"
    if not (handler.exists() and handler.read_text().startswith("enabled")):
        return "qemu-aarch64 is not enabled in binfmt_misc"
    say("arm64 emulation: qemu-aarch64-static registered with binfmt_misc (it stays registered)")
    return None
