"""`sam build` packs what Lambda will run: the handlers, and the shared core with its arm64 dependencies in the layer.

Runs offline against the package registry only; it needs python3.13 (the Lambda runtime) on the machine.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.aws import DEFAULT_TEMPLATE, REPO_ROOT

pytestmark = pytest.mark.slow


def python313() -> str | None:
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    candidates += [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p, "python3.13").exists()]
    for candidate in candidates:
        path = candidate if candidate.endswith("python3.13") else str(Path(candidate, "python3.13"))
        probe = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],  # noqa: S603
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and "(3, 13)" in probe.stdout:
            return path
    return None


def test_sam_build_packs_handlers_and_the_arm64_core_layer(tmp_path: Path) -> None:
    interpreter = python313()
    assert interpreter, "sam build needs python3.13 (the Lambda runtime): install it, e.g. `pyenv install 3.13`"
    build = tmp_path / "build"
    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "samcli", "build", "--template", str(DEFAULT_TEMPLATE), "--build-dir", str(build),
         "--cache-dir", str(tmp_path / "cache")],
        cwd=REPO_ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0",
             "PATH": f"{Path(interpreter).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for function in ("PollFunction", "ExportFunction", "ApiFunction"):
        assert (build / function / "app.py").is_file()
        # the handlers stay thin: no core code copied into the function packages
        assert not (build / function / "connector").exists()
    layer = build / "CoreLayer" / "python"
    assert (layer / "connector" / "pipeline" / "export.py").is_file()
    for package in ("httpx", "pydantic", "aws_lambda_powertools", "tzdata"):
        assert (layer / package).is_dir(), package
    # compiled dependencies are the arm64 (aarch64) builds the template's Architectures ask for
    native = glob.glob(str(layer / "pydantic_core" / "*.so"))
    assert native and all("aarch64" in Path(n).name for n in native), native
