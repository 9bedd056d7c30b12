"""What the tests share, written once (issue 10): a clock moved by hand, a DynamoDB table as a fresh Lambda container
sees it, the sample connection with some settings changed, and an HTTP client for the served API.

The AWS fixture (``aws``: the moto server with the template's resources) is in ``tests/conftest.py``; the SQS event
builder is the local stack's own (``local.lambda_sqs.sqs_event``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import httpx

from connector.settings.model import ConnectionSettings
from local.aws import LocalAws

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())


class FakeClock:
    """Seconds the test moves by hand (throttle windows, leases, caches): time without sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def new_table(aws: LocalAws) -> Any:
    """A fresh boto3 session and Table resource: what a separate Lambda container would have."""
    env = aws.aws_env()
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=env["AWS_REGION"],
    )
    return session.resource("dynamodb", endpoint_url=aws.endpoint_url).Table(aws.env()["TABLE_NAME"])


def connection_body(connection_id: str = "demo-shop", **changes: Any) -> dict[str, Any]:
    """The sample connection (local/sample_connection.json) with some settings changed: a dict merges into its
    tab (``general={...}``, ``sevdesk={...}``, ``accounts={...}``), anything else replaces the field."""
    body = copy.deepcopy(SAMPLE_CONNECTION)
    body["connectionId"] = connection_id
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key].update(value)
        else:
            body[key] = value
    return body


def connection_settings(connection_id: str = "demo-shop", **changes: Any) -> ConnectionSettings:
    return ConnectionSettings.model_validate(connection_body(connection_id, **changes))


class ApiClient(httpx.Client):
    """An HTTP client for the served API (local.serve over a local stack) with the bearer token."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
