"""template.yaml: SAM's own linter passes, and the properties the architecture depends on are really there.

Each structural test names the rule it protects (architecture.md section 1); a refactoring of the template that
drops one of them fails here, not in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.aws import DEFAULT_TEMPLATE, REPO_ROOT, load_template
from local.stack import EXPORT_CONCURRENCY

EVENTS = REPO_ROOT / "events"
FUNCTIONS = ("PollFunction", "ExportFunction", "ApiFunction")
# Services whose grants must always name a resource: the table, the queue, the secrets under the prefix.
SCOPED_SERVICES = ("dynamodb", "sqs", "secretsmanager")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(DEFAULT_TEMPLATE)


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def statements(template: dict[str, Any], function: str) -> Iterator[dict[str, Any]]:
    for policy in props(template, function)["Policies"]:
        # A bare string or a SAM policy template (DynamoDBCrudPolicy, AmazonSQSFullAccess ...) cannot be checked
        # statement by statement; least privilege means explicit statements only.
        assert isinstance(policy, dict) and "Statement" in policy, f"{function}: non-inline policy {policy!r}"
        yield from policy["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_sam_validate_lint_passes() -> None:
    # `python -m samcli` instead of the console script: the venv's scripts carry the shebang of the venv they were
    # built in, the module runs with whatever interpreter runs the tests.
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "samcli", "validate", "--lint", "--template", str(DEFAULT_TEMPLATE)]
        + ["--region", "eu-central-1"],
        cwd=REPO_ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout


def test_functions_run_python313_on_arm64_with_tracing(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    for name in FUNCTIONS:
        own = props(template, name)
        # A function-level override would silently take precedence over Globals.
        assert own.get("Runtime", "python3.13") == "python3.13", name
        assert own.get("Architectures", ["arm64"]) == ["arm64"], name
        assert (REPO_ROOT / own["CodeUri"]).is_dir(), name
        assert own["Handler"] == "app.handler", name


def test_every_function_gets_the_core_layer(template: dict[str, Any]) -> None:
    assert {"Ref": "CoreLayer"} in template["Globals"]["Function"]["Layers"]
    layer = template["Resources"]["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/core/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert (REPO_ROOT / "layers/core/requirements.txt").is_file()
    assert (REPO_ROOT / "layers/core/connector/__init__.py").is_file()
    for name in FUNCTIONS:
        assert props(template, name).get("Layers") is None, f"{name} overrides the global layers"


def test_globals_environment_points_at_the_stack_resources(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": "ConnectorTable"}
    assert variables["EXPORT_QUEUE_URL"] == {"Ref": "ExportQueue"}
    # Scoped to the stack: staging and production in one account never share a connection's credentials.
    assert variables["SECRET_PREFIX"] == {"Fn::Sub": "${SecretPrefix}${AWS::StackName}/"}
    assert variables["BILLBEE_BASE_URL"] == {"Ref": "BillbeeBaseUrl"}
    assert variables["SEVDESK_BASE_URL"] == {"Ref": "SevdeskBaseUrl"}
    assert variables["HTTP_TIMEOUT_SECONDS"] == "20"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "billbee-sevdesk"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "BillbeeSevdesk"
    assert variables["LOG_LEVEL"] == "INFO"
    parameters = template["Parameters"]
    assert parameters["SecretPrefix"]["Default"] == "billbee-sevdesk/"
    assert parameters["BillbeeBaseUrl"]["Default"] == "https://app.billbee.io/api/v1"
    assert parameters["SevdeskBaseUrl"]["Default"] == "https://my.sevdesk.de/api/v1"


def test_poll_runs_hourly_and_never_twice_at_once(template: dict[str, Any]) -> None:
    poll = props(template, "PollFunction")
    assert poll["ReservedConcurrentExecutions"] == 1
    assert poll["Timeout"] == 600
    (event,) = poll["Events"].values()
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert "RetryPolicy" in event["Properties"]
    # The checked-in event for `sam local invoke` is exactly what the scheduler delivers.
    delivered = json.loads(event["Properties"]["Input"])
    assert delivered == {"source": "schedule"}
    assert json.loads((EVENTS / "poll_schedule.json").read_text()) == delivered


def test_export_consumes_the_queue_in_small_partial_failure_batches(template: dict[str, Any]) -> None:
    export = props(template, "ExportFunction")
    (event,) = export["Events"].values()
    assert event["Type"] == "SQS"
    sqs = event["Properties"]
    assert sqs["Queue"] == {"Fn::GetAtt": ["ExportQueue", "Arn"]}
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # A parameter (2 is the minimum SQS allows); the Billbee limits hold across all concurrent exports, and the bench
    # measures throughput with the local stack's copy of the default.
    assert sqs["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "ExportConcurrency"}
    concurrency = template["Parameters"]["ExportConcurrency"]
    assert concurrency["MinValue"] == 2
    assert concurrency["Default"] == EXPORT_CONCURRENCY
    assert sqs["BatchSize"] == 5
    assert sqs["MaximumBatchingWindowInSeconds"] == 5


def test_queue_visibility_covers_six_export_timeouts_and_redrives_to_the_dlq(template: dict[str, Any]) -> None:
    queue = props(template, "ExportQueue")
    assert queue["VisibilityTimeout"] >= 6 * props(template, "ExportFunction")["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ExportDeadLetterQueue", "Arn"]}
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    assert queue["SqsManagedSseEnabled"] is True
    dlq = props(template, "ExportDeadLetterQueue")
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # A message must outlive its trip through the main queue to land in the DLQ at all.
    assert dlq["MessageRetentionPeriod"] >= queue.get("MessageRetentionPeriod", 345600)


def test_table_keys_index_and_protection(template: dict[str, Any]) -> None:
    table_resource = template["Resources"]["ConnectorTable"]
    assert table_resource["DeletionPolicy"] == "Retain"
    assert table_resource["UpdateReplacePolicy"] == "Retain"
    table = table_resource["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "GSI1"
    assert gsi["KeySchema"] == [
        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    defined = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert defined == {"PK": "S", "SK": "S", "GSI1PK": "S", "GSI1SK": "S"}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_no_dynamodb_sqs_or_secrets_grant_on_every_resource(template: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        for statement in statements(template, function):
            actions = as_list(statement["Action"])
            if not any(action.split(":")[0] in SCOPED_SERVICES for action in actions):
                continue
            assert not any(action.endswith(":*") or action == "*" for action in actions), (function, statement)
            for resource in as_list(statement["Resource"]):
                assert resource != "*", (function, statement)


def _granted(template: dict[str, Any], function: str, service: str) -> tuple[set[str], list[Any]]:
    actions: set[str] = set()
    resources: list[Any] = []
    for statement in statements(template, function):
        mine = [a for a in as_list(statement["Action"]) if a.startswith(service + ":")]
        if mine:
            assert statement["Effect"] == "Allow"
            actions.update(mine)
            resources.extend(as_list(statement["Resource"]))
    return actions, resources


TABLE_AND_INDEXES = [{"Fn::GetAtt": ["ConnectorTable", "Arn"]}, {"Fn::Sub": "${ConnectorTable.Arn}/index/*"}]
PREFIX_SECRETS = {
    "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}"
    "${AWS::StackName}/*"
}


# Which actions each function is granted is proved by running it: tests/e2e/test_secrets_and_privileges.py records
# every AWS call of each function during a whole job and compares it with these grants. Here: on which resources.
@pytest.mark.parametrize(
    ("function", "table_resources"),
    [("PollFunction", TABLE_AND_INDEXES), ("ExportFunction", TABLE_AND_INDEXES[:1])],  # the export needs no index
)
def test_worker_functions_get_only_their_table_queue_and_secrets(
    template: dict[str, Any], function: str, table_resources: list[Any]
) -> None:
    _, resources = _granted(template, function, "dynamodb")
    assert resources == table_resources
    _, resources = _granted(template, function, "sqs")
    assert resources == [{"Fn::GetAtt": ["ExportQueue", "Arn"]}]
    _, resources = _granted(template, function, "secretsmanager")
    # Not the API token secret: only the API function may read it.
    assert resources == [PREFIX_SECRETS]


def test_api_function_manages_connection_secrets_and_reads_the_token(template: dict[str, Any]) -> None:
    api = props(template, "ApiFunction")
    assert api["Environment"]["Variables"]["API_TOKEN_SECRET_ID"] == {"Ref": "ApiTokenSecret"}
    assert api["Timeout"] <= 29  # HTTP API integrations time out after 30 s
    actions, resources = _granted(template, "ApiFunction", "secretsmanager")
    assert {"secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"} <= actions
    assert sorted(map(json.dumps, resources)) == sorted(map(json.dumps, [PREFIX_SECRETS, {"Ref": "ApiTokenSecret"}]))
    _, table_resources = _granted(template, "ApiFunction", "dynamodb")
    assert table_resources == TABLE_AND_INDEXES
    generated = props(template, "ApiTokenSecret")["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32


def test_http_api_routes_and_the_checked_in_api_events_match(template: dict[str, Any]) -> None:
    api_events = props(template, "ApiFunction")["Events"]
    routes = set()
    for event in api_events.values():
        assert event["Type"] == "HttpApi"
        assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
        routes.add(f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}")
    assert routes == {"ANY /connections/{proxy+}", "GET /openapi.json", "ANY /connections", "GET /console",
                      "GET /console/{proxy+}"}
    http_api = props(template, "HttpApi")
    assert http_api["StageName"] == "$default"
    assert "CorsConfiguration" not in http_api
    assert "Auth" not in http_api  # the function authenticates with the bearer token itself
    for name in ("api_export.json", "api_get_order.json"):
        event = json.loads((EVENTS / name).read_text())
        assert event["version"] == "2.0"
        assert event["routeKey"] in routes, name
        assert event["requestContext"]["routeKey"] == event["routeKey"]
        assert event["rawPath"] == "/connections/" + event["pathParameters"]["proxy"]
        assert event["headers"]["authorization"].startswith("Bearer ")


def test_checked_in_sqs_event_carries_an_export_message() -> None:
    (record,) = json.loads((EVENTS / "export_sqs.json").read_text())["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].startswith("arn:aws:sqs:eu-central-1:")
    assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1
    assert json.loads(record["body"]) == {"connectionId": "demo-shop", "orderId": 300000180937794, "reason": "poll"}
    export = json.loads(json.loads((EVENTS / "api_export.json").read_text())["body"])
    assert export == {"orderIds": [300000180937794], "setTag": True, "onlyUntagged": False}


def _alarm_on(template: dict[str, Any], namespace: str, metric: str, dimension: Any) -> dict[str, Any]:
    for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
        p: dict[str, Any] = alarm["Properties"]
        metrics = [p] + [m["MetricStat"]["Metric"] for m in p.get("Metrics", []) if "MetricStat" in m]
        for m in metrics:
            if m.get("Namespace") == namespace and m.get("MetricName") == metric:
                if any(d["Value"] == dimension for d in m.get("Dimensions", [])):
                    return p
    raise AssertionError(f"no alarm on {namespace} {metric} {dimension}")


def test_alarms_watch_the_dlq_the_poll_and_the_export_error_rate(template: dict[str, Any]) -> None:
    dlq = _alarm_on(
        template,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"Fn::GetAtt": ["ExportDeadLetterQueue", "QueueName"]},
    )
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)
    poll = _alarm_on(template, "AWS/Lambda", "Errors", {"Ref": "PollFunction"})
    assert (poll["ComparisonOperator"], poll["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    export = _alarm_on(template, "AWS/Lambda", "Errors", {"Ref": "ExportFunction"})
    assert any("Expression" in m and m.get("ReturnData") for m in export["Metrics"]), "export alarm is not a rate"
    for alarm in (dlq, poll, export):
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlertTopic"}], {"Ref": "AWS::NoValue"}]}
    assert template["Resources"]["AlertTopic"]["Condition"] == "HasAlarmEmail"
    assert template["Resources"]["AlertEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def test_connection_errors_and_orders_needing_attention_raise_alarms(template: dict[str, Any]) -> None:
    """A failed poll is caught per connection (the Lambda succeeds), so its own metric carries the alarm; the metric
    names and dimensions here are the ones the handlers emit (tests/e2e/test_metrics.py)."""
    service = [{"Name": "service", "Value": "billbee-sevdesk"}]
    errors = template["Resources"]["ConnectionErrorsAlarm"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"], errors["Dimensions"]) == (
        "BillbeeSevdesk", "ConnectionErrors", service)
    assert (errors["ComparisonOperator"], errors["Threshold"], errors["Period"]) == (
        "GreaterThanOrEqualToThreshold", 1, 3600)
    attention = template["Resources"]["OrdersNeedAttentionAlarm"]["Properties"]
    watched = {m["MetricStat"]["Metric"]["MetricName"] for m in attention["Metrics"] if "MetricStat" in m}
    assert watched == {"ExportNeedsAttention", "UnreadableOrders"}
    for alarm in (errors, attention):
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlertTopic"}], {"Ref": "AWS::NoValue"}]}


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) >= {"ApiUrl", "ConnectorTableName", "ExportQueueUrl", "ExportDeadLetterQueueUrl"}
    assert outputs["ApiTokenSecretArn"]["Value"] == {"Ref": "ApiTokenSecret"}
    assert outputs["ExportDeadLetterQueueUrl"]["Value"] == {"Ref": "ExportDeadLetterQueue"}


def test_samconfig_deploys_the_named_stack_to_frankfurt() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    assert config["default"]["global"]["parameters"] == {
        "stack_name": "billbee-sevdesk-connector",
        "region": "eu-central-1",
    }
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert config["default"]["validate"]["parameters"]["lint"] is True


def test_template_loader_expands_short_form_tags(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  A:\n    Type: X\n    Properties:\n"
        "      R: !Ref B\n      G: !GetAtt B.Arn\n      S: !Sub '${B}'\n      I: !If [C, !Ref D, !Ref AWS::NoValue]\n"
    )
    properties = load_template(path)["Resources"]["A"]["Properties"]
    assert properties == {
        "R": {"Ref": "B"},
        "G": {"Fn::GetAtt": ["B", "Arn"]},
        "S": {"Fn::Sub": "${B}"},
        "I": {"Fn::If": ["C", {"Ref": "D"}, {"Ref": "AWS::NoValue"}]},
    }
