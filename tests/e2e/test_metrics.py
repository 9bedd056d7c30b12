"""The metrics the alarms watch (template.yaml) are really emitted by the handlers, with the alarms' names and
dimensions: a connection whose poll fails, an unreadable order, an order that needs attention."""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from local.faults import FaultRule
from local.lambda_sqs import FakeContext
from local.sample_shop import sample_orders
from local.stack import LocalStack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())


def emitted(output: str) -> dict[str, float]:
    """Metric name -> summed value, from the embedded-metric-format lines of a handler's stdout."""
    values: dict[str, float] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "BillbeeSevdesk"
            assert ["service"] in directive["Dimensions"] and document["service"] == "billbee-sevdesk"
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] = values.get(metric["Name"], 0) + sum(value if isinstance(value, list)
                                                                            else [value])
    return values


def test_the_handlers_emit_what_the_alarms_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    orders = copy.deepcopy(sample_orders()[:2])
    orders[0]["TotalCost"] = "12,50"  # unreadable
    orders[1]["VatMode"] = 4  # margin scheme: needs attention
    with LocalStack(orders=orders, billbee_rate_limits=False,
                    extra_env={"POWERTOOLS_METRICS_DISABLED": "false"}) as stack:
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
        from connector.observability import metrics

        metrics.clear_metrics()  # what earlier tests in this process added with metrics switched off
        stack.save_connection(CONNECTION)
        out = io.StringIO()
        with redirect_stdout(out):
            stack.poll()
            stack.drain()
        values = emitted(out.getvalue())
        assert values["UnreadableOrders"] == 1 and values["ConnectionErrors"] == 0
        assert values["ExportNeedsAttention"] == 1

        stack.faults.add(FaultRule("billbee", "list_orders", "503", times=float("inf")))
        out = io.StringIO()
        with redirect_stdout(out):
            stack.poll_app.handler({"source": "schedule"}, FakeContext("PollFunction"))
        assert emitted(out.getvalue())["ConnectionErrors"] == 1
