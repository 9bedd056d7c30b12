"""ruff on the project and mypy --strict on the core, the local stack and the tests (style.md: cheap insurance), as
part of `make test`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603


def test_ruff_finds_nothing_in_the_code() -> None:
    result = run("ruff", "check", "layers", "functions", "local", "tests")
    assert result.returncode == 0, result.stdout[-4000:]


def test_the_core_the_local_stack_and_the_tests_pass_mypy_strict() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout[-4000:]
