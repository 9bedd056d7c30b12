"""The README's `make serve` walkthrough, run literally: `python -m local.serve` as a user starts it, the two export
lines it prints, then every curl line of the README's block in bash from the repository's directory. Each line must
answer the status its comment gives (issue 9: "works when followed literally on a fresh clone")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CURL_WITH_STATUS = "curl -sS -w '\\n%{http_code}' "


def walkthrough() -> tuple[str, list[tuple[str, int]]]:
    """The README block after "paste them into a second terminal": its first line (AUTH=...) and each curl line
    with the status its comment promises."""
    text = (REPO / "README.md").read_text()
    start = text.index("paste them into a second terminal")
    begin = text.index("```bash\n", start) + len("```bash\n")
    block = text[begin: text.index("\n```", begin)]
    lines = block.splitlines()
    calls = []
    for line in lines[1:]:
        status = re.search(r"#\s*(\d{3})\b", line)
        assert line.startswith("curl ") and status, f"README line without a promised status: {line}"
        calls.append((line, int(status.group(1))))
    return lines[0], calls


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    server = subprocess.Popen(  # noqa: S603 - our own CLI, as `make serve` runs it
        [sys.executable, "-m", "local.serve", "--port", "0", "--logs", str(REPO / "out" / "readme-serve.log")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert server.stdout is not None
    exports: dict[str, str] = {}
    seen = []
    for line in server.stdout:  # the server prints its two export lines once the stack is up
        seen.append(line)
        match = re.match(r"\s*export (API|TOKEN)=(\S+)", line)
        if match:
            exports[match.group(1)] = match.group(2)
        if len(exports) == 2:
            break
    assert len(exports) == 2, "".join(seen)
    try:
        yield exports
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_every_call_of_the_readme_walkthrough_answers_as_the_readme_says(served: dict[str, str]) -> None:
    auth, calls = walkthrough()
    assert len(calls) >= 12
    env = {**os.environ, **served}
    for line, status in calls:
        # The line as the README has it, plus curl's own report of the status on the last line of output.
        reported = line.replace("curl ", CURL_WITH_STATUS, 1)
        script = auth + "\n" + reported
        result = subprocess.run(["bash", "-c", script], cwd=REPO, env=env,  # noqa: S603, S607
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, (line, result.stderr)
        body, _, code = result.stdout.rpartition("\n")
        assert int(code) == status, (line, body[:500])
