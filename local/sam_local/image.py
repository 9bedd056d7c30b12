"""The Lambda python3.13 image for `sam local invoke`: AWS's own where it can be had, else a stand-in built here.

The stand-in, built only from what this machine reaches (Debian's packages and PyPI):

* a root file system of Debian 13 (trixie), whose python3.13 is the runtime's Python, made by ``mmdebstrap
  --variant=extract`` (packages unpacked, no maintainer scripts: nothing runs under emulation, ~10 s), with the
  standard library's bytecode compiled here (an emulated Python would otherwise compile it on every cold start);
* ``/var/runtime``: the runtime interface client ``awslambdaric`` (what the AWS image runs) and boto3 (which the AWS
  runtime provides), installed from PyPI as wheels for the target architecture;
* ``/var/runtime/bootstrap``: runs ``python3.13 -m awslambdaric $_HANDLER`` with Lambda's search path
  (``/var/task``, ``/opt/python/...``, ``/var/runtime``) and Lambda's environment variables.

SAM CLI then does what it does with the AWS image: adds its runtime interface emulator (``/var/rapid/aws-lambda-rie``,
which starts ``/var/runtime/bootstrap``) and the layer (``/opt``), mounts the function's code on ``/var/task``.
The image is cached in the engine under a tag and a label holding a hash of this recipe; it is rebuilt only when the
recipe changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from local.sam_local.engine import DockerEngine, SamLocalError, apt_install, run, say

REAL_IMAGE = "public.ecr.aws/lambda/python:3.13-{arch}"  # the name SAM CLI itself uses for python3.13
STANDIN_IMAGE = "billbee-sevdesk-connector/lambda-python-standin:3.13-{arch}"
RECIPE_LABEL = "billbee-sevdesk-connector.standin-recipe"
PULL_SECONDS = 300

DEBIAN_SUITE = "trixie"  # Debian 13: its python3.13 is the Lambda runtime's Python version
DEBIAN_MIRROR = os.environ.get("SAM_LOCAL_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# python3.13 and what it needs; libstdc++6 for awslambdaric's native part; dash + coreutils because SAM CLI's image
# build runs `/bin/sh -c "mv ... && chmod ..."`; base-files for the merged-/usr links (/bin, /lib) and os-release.
DEBIAN_PACKAGES = ("python3.13", "libstdc++6", "dash", "coreutils", "base-files", "netbase")
PYPI_PACKAGES = ("awslambdaric==4.2.2", "boto3")

DEBIAN_ARCH = {"arm64": "arm64", "x86_64": "amd64"}
DOCKER_PLATFORM = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}
WHEEL_PLATFORM = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
UNAME_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}

BOOTSTRAP = """#!/bin/sh
# Stand-in for the Lambda python3.13 runtime's bootstrap (started by the runtime interface emulator): Debian's
# python3.13 running the runtime interface client awslambdaric, with Lambda's module search path.
export AWS_EXECUTION_ENV=AWS_Lambda_python3.13
export PYTHONPATH=/var/task:/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime
exec /usr/bin/python3.13 -m awslambdaric "$_HANDLER"
"""

DOCKERFILE = """FROM scratch
COPY rootfs/ /
COPY runtime/ /var/runtime/
COPY etc/ /etc/
ENV LANG=en_US.UTF-8 TZ=:UTC PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin \\
    LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime
WORKDIR /var/task
"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass
class Image:
    name: str
    arch: str
    real: bool  # AWS's public.ecr.aws/lambda/python image; False: the stand-in built here
    detail: str  # what it holds, for the output

    def describe(self) -> str:
        kind = "AWS's Lambda base image" if self.real else "the local stand-in for AWS's Lambda base image"
        return f"{self.name} ({kind}; {self.detail})"


def recipe_hash(arch: str) -> str:
    recipe = "\n".join(
        [arch, DEBIAN_SUITE, *DEBIAN_PACKAGES, *PYPI_PACKAGES, BOOTSTRAP, DOCKERFILE, PASSWD, GROUP]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def lambda_image(engine: DockerEngine, arch: str, *, allow_pull: bool = True) -> Image:
    """AWS's image when present or pullable, else the stand-in (built when missing or its recipe changed)."""
    real = REAL_IMAGE.format(arch=arch)
    if engine.cmd("image", "inspect", real, check=False).returncode == 0:
        say(f"{real} is present: using AWS's Lambda base image")
        return Image(real, arch, True, "present in the engine")
    if allow_pull:
        say(f"pulling {real} ...")
        try:
            pulled = engine.cmd("pull", "--platform", DOCKER_PLATFORM[arch], real, timeout=PULL_SECONDS, check=False)
        except SamLocalError as error:  # a pull that hangs (no answer from the registry)
            pulled = subprocess.CompletedProcess([], 1, "", str(error))
        if pulled.returncode == 0:
            return Image(real, arch, True, "pulled")
        reason = (pulled.stderr or pulled.stdout).strip().splitlines()
        say(f"cannot pull {real} ({reason[-1] if reason else 'no reason given'}): using a stand-in built here")
    return standin_image(engine, arch)


def standin_image(engine: DockerEngine, arch: str) -> Image:
    tag = STANDIN_IMAGE.format(arch=arch)
    wanted = recipe_hash(arch)
    found = engine.cmd("image", "inspect", tag, "--format", f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}',
                       check=False)
    detail = f"Debian {DEBIAN_SUITE} python3.13 + {' + '.join(PYPI_PACKAGES)}"
    if found.returncode == 0 and found.stdout.strip() == wanted:
        say(f"stand-in image {tag} is built (recipe {wanted}): reusing it")
        return Image(tag, arch, False, detail)
    build_standin(engine, arch, tag, wanted)
    return Image(tag, arch, False, detail)


def build_standin(engine: DockerEngine, arch: str, tag: str, recipe: str) -> None:
    apt_install(["mmdebstrap", "arch-test"], "building the stand-in image's Debian root file system")
    with tempfile.TemporaryDirectory(prefix="sam-local-image-") as directory:
        context = Path(directory)
        rootfs = context / "rootfs"
        say(f"building stand-in image {tag}: Debian {DEBIAN_SUITE} {DEBIAN_ARCH[arch]} root file system "
            f"({', '.join(DEBIAN_PACKAGES)}) from {DEBIAN_MIRROR}")
        run(
            [
                "mmdebstrap", "--quiet", "--variant=extract", f"--arch={DEBIAN_ARCH[arch]}",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR,
            ],
            timeout=900,
        )
        python = rootfs / "usr" / "lib" / "python3.13"
        if not (rootfs / "usr" / "bin" / "python3.13").exists():
            raise SamLocalError(f"the Debian {DEBIAN_SUITE} root file system has no python3.13")
        if sys.version_info[:2] == (3, 13):
            # Bytecode is the same on every architecture; python3.13's magic number is fixed across 3.13.x.
            run([sys.executable, "-m", "compileall", "-q", "-j0", "-s", str(rootfs), "-p", "/", str(python)],
                timeout=600)
        else:
            say(f"note: this Python is {sys.version.split()[0]}, not 3.13: the stand-in's standard library is not "
                "precompiled (slower cold starts)")
        say(f"installing {', '.join(PYPI_PACKAGES)} from PyPI ({WHEEL_PLATFORM[arch]} wheels) into /var/runtime")
        run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
                "--target", str(context / "runtime"), "--platform", WHEEL_PLATFORM[arch], "--implementation", "cp",
                "--python-version", "3.13", "--only-binary=:all:", *PYPI_PACKAGES,
            ],
            timeout=600,
        )
        bootstrap = context / "runtime" / "bootstrap"
        bootstrap.write_text(BOOTSTRAP)
        bootstrap.chmod(0o755)
        (context / "etc").mkdir()
        (context / "etc" / "passwd").write_text(PASSWD)
        (context / "etc" / "group").write_text(GROUP)
        (context / "Dockerfile").write_text(DOCKERFILE)
        engine.cmd("build", "--quiet", "--platform", DOCKER_PLATFORM[arch], "--label", f"{RECIPE_LABEL}={recipe}",
                   "--tag", tag, str(context), timeout=900)
    say(f"stand-in image {tag} built")


def smoke_test(engine: DockerEngine, image: Image, env: dict[str, str]) -> str:
    """Run the image's python3.13 once; returns e.g. 'aarch64 Python 3.13.5'. Raises when it does not run."""
    probe = "import platform; print(platform.machine(), 'Python', platform.python_version())"
    variables = [option for name, value in env.items() for option in ("--env", f"{name}={value}")]
    result = engine.cmd(
        "run", "--rm", "--network", "none", "--platform", DOCKER_PLATFORM[image.arch], *variables,
        "--entrypoint", "python3.13", image.name, "-c", probe, timeout=300, check=False,
    )
    answer = result.stdout.strip()
    if result.returncode != 0 or not answer.startswith(UNAME_MACHINE[image.arch] + " "):
        raise SamLocalError(
            f"{image.name} does not run {image.arch} code here (exit {result.returncode}): "
            f"{(answer or result.stderr.strip())[-500:]}"
        )
    return answer
