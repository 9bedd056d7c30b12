"""LocalAws builds the local DynamoDB table, queues and token secret from template.yaml's own definitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.aws import DEFAULT_TEMPLATE, LocalAws, LocalAwsError, load_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(DEFAULT_TEMPLATE)


def table_props(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["ConnectorTable"]["Properties"]
    return properties


def test_the_table_has_the_templates_keys_index_ttl_and_pitr(aws: LocalAws, template: dict[str, Any]) -> None:
    expected = table_props(template)
    dynamodb = aws.client("dynamodb")
    table = dynamodb.describe_table(TableName=aws.env()["TABLE_NAME"])["Table"]
    assert table["TableName"] == "ConnectorTable-local"
    assert table["KeySchema"] == expected["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert table["BillingModeSummary"]["BillingMode"] == expected["BillingMode"]
    created_indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]) for index in table["GlobalSecondaryIndexes"]
    }
    declared_indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]) for index in expected["GlobalSecondaryIndexes"]
    }
    assert created_indexes == declared_indexes
    ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == (
        "ENABLED",
        expected["TimeToLiveSpecification"]["AttributeName"],
    )
    backups = dynamodb.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_the_export_queue_redrives_to_the_dlq_as_declared(aws: LocalAws, template: dict[str, Any]) -> None:
    declared = template["Resources"]["ExportQueue"]["Properties"]
    env = aws.env()
    sqs = aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=env["EXPORT_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=env["EXPORT_DLQ_URL"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) == declared["RedrivePolicy"]["maxReceiveCount"]
    assert int(attributes["VisibilityTimeout"]) == declared["VisibilityTimeout"]
    dlq_retention = template["Resources"]["ExportDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
    dlq_attributes = sqs.get_queue_attributes(QueueUrl=env["EXPORT_DLQ_URL"], AttributeNames=["All"])["Attributes"]
    assert int(dlq_attributes["MessageRetentionPeriod"]) == dlq_retention


def test_a_message_received_max_receive_count_times_moves_to_the_dlq(aws: LocalAws, template: dict[str, Any]) -> None:
    """What Lambda's SQS poller does to an order that keeps failing: after maxReceiveCount it lands in the DLQ."""
    env = aws.env()
    sqs = aws.client("sqs")
    body = json.dumps({"connectionId": "demo-shop", "orderId": 1, "reason": "poll"})
    sqs.send_message(QueueUrl=env["EXPORT_QUEUE_URL"], MessageBody=body)
    max_receives = template["Resources"]["ExportQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    for _ in range(max_receives):
        # VisibilityTimeout=0 plays "the function reported this item as failed": it is visible again at once.
        received = sqs.receive_message(QueueUrl=env["EXPORT_QUEUE_URL"], VisibilityTimeout=0)["Messages"]
        assert [m["Body"] for m in received] == [body]
    assert sqs.receive_message(QueueUrl=env["EXPORT_QUEUE_URL"]).get("Messages", []) == []
    dead = sqs.receive_message(QueueUrl=env["EXPORT_DLQ_URL"])["Messages"]
    assert [m["Body"] for m in dead] == [body]
    sqs.delete_message(QueueUrl=env["EXPORT_DLQ_URL"], ReceiptHandle=dead[0]["ReceiptHandle"])


def test_env_holds_every_globals_variable_resolved(aws: LocalAws, template: dict[str, Any]) -> None:
    env = aws.env()
    declared = template["Globals"]["Function"]["Environment"]["Variables"]
    assert set(declared) <= set(env)
    for name, value in declared.items():
        if isinstance(value, str):
            assert env[name] == value, name
    assert env["TABLE_NAME"] == aws.resources["ConnectorTable"].ref
    assert env["EXPORT_QUEUE_URL"].startswith(aws.endpoint_url + "/")
    assert env["SECRET_PREFIX"] == "billbee-sevdesk/billbee-sevdesk-connector-local/"  # prefix + stack name
    assert env["BILLBEE_BASE_URL"] == "https://app.billbee.io/api/v1"
    assert env["SEVDESK_BASE_URL"] == "https://my.sevdesk.de/api/v1"
    assert env["API_TOKEN_SECRET_ID"].startswith("arn:aws:secretsmanager:eu-central-1:")
    assert env["AWS_ENDPOINT_URL"] == aws.endpoint_url
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "eu-central-1"
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert all(isinstance(value, str) for value in env.values())


def test_function_env_is_what_lambda_would_give_that_function(aws: LocalAws) -> None:
    # Only the API function is told where the API token is (the others have no IAM grant on it either).
    assert "API_TOKEN_SECRET_ID" in aws.function_env("ApiFunction")
    poll_env = aws.function_env("PollFunction")
    assert "API_TOKEN_SECRET_ID" not in poll_env
    assert poll_env["TABLE_NAME"] == "ConnectorTable-local"
    with pytest.raises(LocalAwsError):
        aws.function_env("ConnectorTable")


def test_boto3_reads_and_writes_through_the_function_environment(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handlers build plain boto3 clients; AWS_ENDPOINT_URL etc. from env() must be all they need."""
    import boto3

    for name, value in aws.env().items():
        monkeypatch.setenv(name, value)
    env = aws.env()
    table = boto3.resource("dynamodb").Table(env["TABLE_NAME"])
    table.put_item(Item={"PK": "CONN#demo-shop", "SK": "ORDER#42", "GSI1PK": "CONN#demo-shop#FAILED", "GSI1SK": "42"})
    by_state = table.query(
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": "CONN#demo-shop#FAILED"},
    )["Items"]
    assert [item["SK"] for item in by_state] == ["ORDER#42"]

    token = boto3.client("secretsmanager").get_secret_value(SecretId=env["API_TOKEN_SECRET_ID"])["SecretString"]
    generated = load_template(DEFAULT_TEMPLATE)["Resources"]["ApiTokenSecret"]["Properties"]["GenerateSecretString"]
    assert len(token) == generated["PasswordLength"]
    assert token.isalnum()  # ExcludePunctuation: true, as the deployed secret

    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=env["EXPORT_QUEUE_URL"], MessageBody="{}")
    (message,) = sqs.receive_message(QueueUrl=env["EXPORT_QUEUE_URL"])["Messages"]
    sqs.delete_message(QueueUrl=env["EXPORT_QUEUE_URL"], ReceiptHandle=message["ReceiptHandle"])


def test_parameter_overrides_reach_env_and_a_second_instance_leaves_the_first_intact(aws: LocalAws) -> None:
    sandbox = "http://127.0.0.1:9/api/v1"
    with LocalAws(parameters={"BillbeeBaseUrl": sandbox, "SecretPrefix": "other/"}, name_suffix="second") as other:
        assert other.env()["BILLBEE_BASE_URL"] == sandbox
        assert other.env()["SECRET_PREFIX"] == "other/billbee-sevdesk-connector-local/"
        assert other.env()["TABLE_NAME"] == "ConnectorTable-second"
    # moto's state is shared by the process: stopping the second instance must not take the first one's resources.
    tables = aws.client("dynamodb").list_tables()["TableNames"]
    assert "ConnectorTable-local" in tables
    assert "ConnectorTable-second" not in tables


def test_unknown_parameter_override_is_refused() -> None:
    with pytest.raises(LocalAwsError, match="NoSuchParameter"):
        with LocalAws(parameters={"NoSuchParameter": "x"}, name_suffix="refused"):
            pass


def test_a_template_property_that_is_not_emulated_fails_loudly(aws: LocalAws, tmp_path: Path) -> None:
    """Silently skipping an unknown property would let the local table drift from the deployed one."""
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  OtherTable:\n    Type: AWS::DynamoDB::Table\n    Properties:\n"
        "      BillingMode: PAY_PER_REQUEST\n      ImportSourceSpecification: {}\n"
        "      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}]\n"
        "      KeySchema: [{AttributeName: PK, KeyType: HASH}]\n"
    )
    other = LocalAws(template, name_suffix="unknown")
    other.start()
    try:
        with pytest.raises(LocalAwsError, match="ImportSourceSpecification"):
            other.create_resources()
    finally:
        other.stop()
    assert "ConnectorTable-local" in aws.client("dynamodb").list_tables()["TableNames"]


def test_intrinsics_in_iam_policies_resolve_to_the_local_resources(aws: LocalAws, template: dict[str, Any]) -> None:
    (policy,) = template["Resources"]["PollFunction"]["Properties"]["Policies"]
    by_sid = {statement["Sid"]: aws.resolve(statement["Resource"]) for statement in policy["Statement"]}
    table_arn = aws.resources["ConnectorTable"].attributes["Arn"]
    assert by_sid["ConnectorTable"] == [table_arn, table_arn + "/index/*"]
    assert by_sid["EnqueueExports"] == aws.resources["ExportQueue"].attributes["Arn"]
    assert by_sid["ConnectionSecrets"] == (
        "arn:aws:secretsmanager:eu-central-1:123456789012:secret:billbee-sevdesk/billbee-sevdesk-connector-local/*"
    )
    alarm_actions = template["Resources"]["PollErrorsAlarm"]["Properties"]["AlarmActions"]
    assert aws.resolve({"AlarmActions": alarm_actions}) == {}  # AlarmEmail is empty: AWS::NoValue drops the key
