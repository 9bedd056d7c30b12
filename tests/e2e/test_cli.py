"""The command line answers bad input with one clear message and a non-zero exit, never a traceback and never a
secret (issue 9): `python -m local.run` and `python -m local.serve`, as a user types them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import SAMPLE_CONNECTION

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SECRET = "sevdesk-token-0123456789abcdef"  # a credential in a connection file with errors: must never be printed


def run(module: str, *args: str, timeout: int = 120) -> tuple[int, str]:
    result = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def connection(**changes: object) -> dict[str, object]:
    return {**SAMPLE_CONNECTION, **changes}


CASES = {
    "no such orders file": (["--orders", "{tmp}/missing.json"], "no such file"),
    "orders file not JSON": (["--orders", "{tmp}/broken.json"], "not valid JSON"),
    "one order instead of a list": (["--orders", "{tmp}/one.json"], "put it in [ ]"),
    "orders file with no orders": (["--orders", "{tmp}/empty.json"], "the array is empty"),
    "connection with errors": (["--connection", "{tmp}/bad-connection.json"], "general.orderStateIds"),
    "credential with a space inside": (["--connection", "{tmp}/bad-credential.json"],
                                       "credentials.sevdeskApiToken: must not contain spaces"),
    "connection not an object": (["--connection", "{tmp}/list.json"], "expected a JSON object"),
    "unknown fault operation": (["--faults", "sevdesk.save_vouchr=500"], "has no operation 'save_vouchr'"),
    "malformed fault spec": (["--faults", "sevdesk.save_voucher"], "expected api.operation=kind"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "broken.json").write_text('[{"BillBeeOrderId": 1,')
    (tmp / "one.json").write_text(json.dumps({"Data": {"BillBeeOrderId": 1}}))
    (tmp / "empty.json").write_text("[]")
    (tmp / "list.json").write_text("[]")
    bad = connection(general={"startDate": "2026-10-01", "orderStateIds": [99]},
                     credentials={"billbeeApiKey": "k" * 20, "billbeeUsername": "u@example.com",
                                  "billbeeApiPassword": "p" * 20, "sevdeskApiToken": SECRET})
    (tmp / "bad-connection.json").write_text(json.dumps(bad))
    spaced = connection(credentials={"billbeeApiKey": "k" * 20, "billbeeUsername": "u@example.com",
                                     "billbeeApiPassword": "p" * 20, "sevdeskApiToken": "abc " + SECRET})
    (tmp / "bad-credential.json").write_text(json.dumps(spaced))
    return tmp


@pytest.mark.parametrize("case", sorted(CASES))
def test_local_run_answers_bad_input_with_one_message_and_exit_2(files: Path, case: str) -> None:
    args, words = CASES[case]
    code, output = run("local.run", *(a.format(tmp=files) for a in args), "--out", str(files / "out"))
    assert code == 2, output
    assert words in output
    assert "Traceback" not in output and SECRET not in output and SECRET[4:-4] not in output
    assert len(output.strip().splitlines()) <= 4, output


def test_a_state_made_from_other_orders_is_refused_with_how_to_start_over(files: Path) -> None:
    state = files / "state"
    orders = files / "orders.json"
    orders.write_text(json.dumps(json.loads((REPO / ".." / "shared" / "specs" / "billbee-examples" /
                                             "php-sdk_get_orders_response.json").read_text())["Data"]))
    first, output = run("local.run", "--orders", str(orders), "--out", str(files / "o1"), "--state", str(state),
                        timeout=300)
    assert first == 0, output
    again, output = run("local.run", "--orders", str(orders), "--out", str(files / "o2"), "--state", str(state),
                        timeout=300)
    assert again == 0, output  # the same file: the second run continues from the first
    other = files / "other.json"
    other.write_text(orders.read_text())
    refused, output = run("local.run", "--orders", str(other), "--out", str(files / "o3"), "--state", str(state))
    assert refused == 2 and "make clean" in output and "earlier run" in output, output
    sample, output = run("local.run", "--out", str(files / "o4"), "--state", str(state))
    assert sample == 0, output  # without --orders, a state continues whatever it was made from


def test_local_serve_on_a_port_in_use_says_so_and_how_to_pick_another(files: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, output = run("local.serve", "--port", str(port), "--logs", str(files / "serve.log"), timeout=180)
    assert code == 2, output
    assert f"cannot listen on 127.0.0.1:{port}" in output and "--port" in output
    assert "Traceback" not in output


def test_local_serve_answers_a_bad_connection_file_like_local_run(files: Path) -> None:
    code, output = run("local.serve", "--connection", str(files / "bad-credential.json"), "--port", "0")
    assert code == 2 and "credentials.sevdeskApiToken" in output, output
    assert SECRET not in output and "Traceback" not in output
