"""Secrets stay secret, and every function may do exactly what it does (issue 9).

- Credentials are fed through every path that can fail (pasted with a newline, with a space inside, wrong, an API
  unreachable, a secret edited by hand, a token revoked while exporting); afterwards every answer and every line the
  functions logged is searched for them.
- Each function's calls to AWS are recorded while the whole job runs (the API's routes, the poll, the exports with
  contacts, bookings and a failure) and compared with the actions template.yaml grants it: every grant is used, and
  nothing is called that is not granted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import ApiClient

from local.faults import FaultRule
from local.sample_shop import sample_orders
from local.serve import ApiGatewayServer, api_token
from local.stack import LocalStack, load_handler

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())
CID = CONNECTION["connectionId"]
ORDERS = [sample_orders()[i] for i in (0, 2, 5, 6, 11)]
# IAM has one action for an API call and its batch form.
BATCH_ACTIONS = {"SendMessageBatch": "SendMessage", "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
                 "DeleteMessageBatch": "DeleteMessage"}
FUNCTIONS = ("PollFunction", "ExportFunction", "ApiFunction")


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # intrinsics: only the actions matter here


def granted(function: str) -> set[str]:
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=_Loader)  # noqa: S506 - safe loader subclass
    actions: set[str] = set()
    for policy in template["Resources"][function]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            value = statement["Action"]
            actions.update([value] if isinstance(value, str) else value)
    return actions


class Calls:
    """Every AWS call of each function's own boto3 clients, as IAM actions."""

    def __init__(self) -> None:
        self.by_function: dict[str, set[str]] = defaultdict(set)

    def watch(self, function: str, runtime: Any) -> None:
        for client in (runtime.table.meta.client, runtime.sqs, runtime.secrets_client):
            client.meta.events.register("before-call.*.*", self._recorder(function))

    def _recorder(self, function: str) -> Any:
        def record(model: Any, **_: Any) -> None:
            name = BATCH_ACTIONS.get(model.name, model.name)
            self.by_function[function].add(f"{model.service_model.service_name}:{name}")

        return record


class Job:
    def __init__(self, stack: LocalStack, server: ApiGatewayServer, calls: Calls, log: Path) -> None:
        self.stack = stack
        self.calls = calls
        self.log = log
        self.answers: list[str] = []
        self.http = ApiClient(server.url, api_token(stack))

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        self.answers.append(response.text)
        return response

    def everything_said(self) -> str:
        return "\n".join([*self.answers, self.log.read_text()])


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    log = tmp_path_factory.mktemp("logs") / "functions.log"
    calls = Calls()
    with LocalStack(orders=ORDERS, billbee_rate_limits=False) as stack, stack.function_logs(log):
        api_app = load_handler("api")
        calls.watch("ApiFunction", api_app.api.runtime)
        calls.watch("PollFunction", stack.runtime)
        stack.drain()  # builds the export containers
        for container in stack._worker_apps:
            calls.watch("ExportFunction", container.runtime)
        with ApiGatewayServer(api_app.handler) as server:
            yield Job(stack, server, calls, log)


def credentials(stack: LocalStack, **changes: str) -> dict[str, str]:
    return {**stack.credentials, **changes}


def test_credentials_never_appear_in_an_answer_or_a_log_line_on_any_path(job: Job) -> None:
    stack = job.stack
    real = stack.credentials
    wrong_token = "f" * 32
    wrong_password = "Falsches-Passwort-" + "x" * 8
    inner_space = "abc def-" + real["sevdeskApiToken"]
    body = {**CONNECTION}
    # pasted with a newline and spaces: trimmed, saved, working
    created = job.call("PUT", f"/connections/{CID}", json={**body, "credentials": credentials(
        stack, sevdeskApiToken=real["sevdeskApiToken"] + "\n", billbeeApiKey=f"  {real['billbeeApiKey']}  ")})
    assert created.status_code == 201, created.text
    stored = json.loads(stack.client("secretsmanager").get_secret_value(
        SecretId=stack.runtime.secrets.secret_id_for(CID))["SecretString"])
    assert stored["sevdeskApiToken"] == real["sevdeskApiToken"] and stored["billbeeApiKey"] == real["billbeeApiKey"]
    # a space inside: refused, naming the field only
    refused = job.call("PUT", f"/connections/{CID}", json={**body, "credentials": credentials(
        stack, sevdeskApiToken=inner_space)})
    assert refused.status_code == 400 and "body.credentials.sevdeskApiToken" in refused.text
    # wrong: refused by the checks
    assert job.call("PUT", f"/connections/{CID}", json={**body, "credentials": credentials(
        stack, sevdeskApiToken=wrong_token)}).status_code == 422
    assert job.call("PUT", f"/connections/{CID}", json={**body, "credentials": credentials(
        stack, billbeeApiPassword=wrong_password)}).status_code == 422
    # an API unreachable while checking: 502, try later
    stack.faults.add(FaultRule("sevdesk", "bookkeeping_version", "503", times=float("inf")))
    try:
        unreachable = job.call("PUT", f"/connections/{CID}", json={**body, "credentials": credentials(stack)})
    finally:
        stack.faults.clear()
    assert unreachable.status_code == 502 and "try again later" in unreachable.text
    # the poll and the exports with the right credentials, then with the token revoked mid-way
    job.stack.poll()
    stack.sevdesk.api_token = wrong_token
    job.stack.drain()
    stack.sevdesk.api_token = real["sevdeskApiToken"]
    # a secret edited by hand into something a header cannot carry
    secrets = stack.client("secretsmanager")
    secret_id = stack.runtime.secrets.secret_id_for(CID)
    broken = {**stored, "sevdeskApiToken": real["sevdeskApiToken"] + "\r\nX-Injected: yes"}
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(broken))
    stack.runtime.secrets.forget(secret_id)
    summary = stack.poll()["connections"][0]
    assert summary["status"] == "ERROR" and "does not hold" in summary["error"]
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(stored))

    said = job.everything_said()
    for value in (*real.values(), wrong_token, wrong_password, inner_space):
        assert value not in said, "a credential was written to an answer or the log"
        assert value[2:-2] not in said  # nor a recognisable part of it
    assert "X-Injected" not in said


def test_each_function_is_granted_exactly_the_aws_actions_it_calls(job: Job) -> None:
    stack = job.stack
    job.call("PUT", f"/connections/{CID}", json={**CONNECTION, "credentials": stack.credentials})  # PutSecretValue
    assert job.call("GET", "/connections").status_code == 200
    assert job.call("GET", f"/connections/{CID}").status_code == 200
    assert job.call("GET", f"/connections/{CID}/setup-options").status_code == 200
    assert job.call("POST", f"/connections/{CID}/payment-accounts",
                    json={"paymentMethod": 1, "name": "Überweisung BB"}).status_code == 201
    stack.faults.add(FaultRule("sevdesk", "upload_temp_file", "503", times=4))  # an export fails, backs off
    assert job.call("POST", f"/connections/{CID}/exports",
                    json={"orderIds": [o["BillBeeOrderId"] for o in ORDERS]}).status_code == 202
    stack.poll()
    stack.drain()
    stack.faults.clear()
    assert job.call("GET", f"/connections/{CID}/orders", params={"state": "EXPORTED"}).status_code == 200
    assert job.call("GET", f"/connections/{CID}/orders/{ORDERS[0]['BillBeeOrderId']}").status_code == 200
    stack.sqs().send_message(QueueUrl=stack.env["EXPORT_DLQ_URL"], MessageBody="not an export message")
    assert job.call("GET", f"/connections/{CID}/dead-letters").status_code == 200
    stack.sevdesk.archive_check_account(5101)  # a booking refused: NEEDS_ATTENTION, to retry and to mark
    job.call("PUT", f"/connections/{CID}", json={**CONNECTION})  # refused by setup now; nothing written
    job.call("DELETE", f"/connections/{CID}")
    job.call("PUT", "/connections/other-shop", json={**CONNECTION, "connectionId": "other-shop",
                                                       "credentials": stack.credentials})  # CreateSecret
    job.call("DELETE", "/connections/other-shop")  # DeleteItem, DeleteSecret
    for function in FUNCTIONS:
        called = job.calls.by_function[function]
        assert called == granted(function), (
            f"{function}: called but not granted {sorted(called - granted(function))}; "
            f"granted but never called {sorted(granted(function) - called)}"
        )
