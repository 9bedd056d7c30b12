"""`make sam-local`'s parts that need no Docker engine (the whole run is `make sam-local` itself, which `.ci/run` runs
after the suite): SAM CLI's `--docker-network host` made real, the run's copies of events/, the x86_64 override."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from docker.models.containers import ContainerCollection
from samcli.local.docker.container import Container, ContainerContext

from local.aws import LocalAws, load_template
from local.sam_local import run
from local.sam_local.engine import SamLocalError
from local.sam_local.image import recipe_hash
from local.sam_local.run import EVENTS, TEMPLATE, api_event, choose_arch, export_event_from_queue, with_architecture
from local.sam_local.sam_cli import RIE, install_host_network


class RecordingContainers:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create(self, image: str, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return SimpleNamespace(id="c0ffee")


@pytest.fixture
def host_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """install_host_network() with SAM CLI's and docker-py's own methods put back after the test."""
    monkeypatch.setattr(Container, "create", Container.create)
    monkeypatch.setattr(ContainerCollection, "create", ContainerCollection.create)
    install_host_network()


def sam_container(tmp_path: Path, containers: RecordingContainers, network: str | None) -> Any:
    container = Container(
        "samcli/lambda-python:3.13-arm64-test", ["app.handler"], "/var/task", str(tmp_path),
        entrypoint=[RIE, "--log-level", "error"], docker_client=SimpleNamespace(containers=containers),
    )
    container.network_id = network
    return container


@pytest.mark.usefixtures("host_network")
def test_a_container_asked_for_the_host_network_gets_it_and_its_emulator_listens_on_samcli_s_port(
    tmp_path: Path,
) -> None:
    containers = RecordingContainers()
    container = sam_container(tmp_path, containers, "host")
    container.create(ContainerContext.INVOKE)
    (kwargs,) = containers.calls
    assert kwargs["network_mode"] == "host"
    entrypoint = kwargs["entrypoint"]
    assert entrypoint[:3] == [RIE, "--log-level", "error"]
    address = entrypoint[entrypoint.index("--runtime-interface-emulator-address") + 1]
    assert address == f"127.0.0.1:{container.rapid_port_host}"  # where SAM CLI sends the invocation
    api = entrypoint[entrypoint.index("--runtime-api-address") + 1]
    assert api.startswith("127.0.0.1:") and api != "127.0.0.1:9001"  # not the fixed port on the host's network


@pytest.mark.usefixtures("host_network")
def test_other_networks_are_left_to_samcli(tmp_path: Path) -> None:
    containers = RecordingContainers()
    sam_container(tmp_path, containers, None).create(ContainerContext.INVOKE)
    (kwargs,) = containers.calls
    assert "network_mode" not in kwargs
    assert kwargs["entrypoint"] == [RIE, "--log-level", "error"]
    assert "8080" in kwargs["ports"]


def test_docker_py_drops_published_ports_in_host_mode_as_the_docker_cli_does(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(ContainerCollection, "create", lambda self, image, command=None, **kw: seen.append(kw))
    monkeypatch.setattr(Container, "create", Container.create)
    install_host_network()
    collection = ContainerCollection(client=None)
    collection.create("image", network_mode="host", ports={"8080": ("127.0.0.1", 5000)})
    collection.create("image", ports={"8080": ("127.0.0.1", 5001)})
    assert seen == [{"network_mode": "host"}, {"ports": {"8080": ("127.0.0.1", 5001)}}]


def test_the_run_s_api_events_carry_the_token_and_the_order_and_leave_events_untouched(tmp_path: Path) -> None:
    before = {name: (EVENTS / name).read_text() for name in ("api_get_order.json", "api_export.json")}
    get = json.loads(api_event(EVENTS / "api_get_order.json", "t0ken", 300000181401940, tmp_path).read_text())
    assert get["headers"]["authorization"] == "Bearer t0ken"
    assert get["rawPath"] == get["requestContext"]["http"]["path"] == "/connections/demo-shop/orders/300000181401940"
    assert get["pathParameters"]["proxy"] == "demo-shop/orders/300000181401940"
    export = json.loads(api_event(EVENTS / "api_export.json", "t0ken", 300000181401940, tmp_path).read_text())
    assert json.loads(export["body"])["orderIds"] == [300000181401940]
    assert (tmp_path / "api_export.json").stat().st_mode & 0o077 == 0  # the token's file is the owner's only
    assert before == {name: (EVENTS / name).read_text() for name in before}


def test_the_run_s_export_event_is_a_queued_message_in_events_export_sqs_shape(tmp_path: Path) -> None:
    with LocalAws() as aws:
        sqs = aws.client("sqs")
        queue_url = aws.env()["EXPORT_QUEUE_URL"]
        body = json.dumps({"connectionId": "demo-shop", "orderId": 300000181401940, "reason": "poll"})
        sent = sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        path, message = export_event_from_queue(sqs, queue_url, tmp_path)
        event = json.loads(path.read_text())
        shape = json.loads((EVENTS / "export_sqs.json").read_text())
    (record,) = event["Records"]
    assert set(record) == set(shape["Records"][0])
    assert set(record["attributes"]) == set(shape["Records"][0]["attributes"])
    assert record["messageId"] == sent["MessageId"] == message["MessageId"]
    assert record["body"] == body and record["receiptHandle"] == message["ReceiptHandle"]
    assert record["eventSourceARN"].endswith(":" + queue_url.rsplit("/", 1)[1])
    assert record["eventSource"] == "aws:sqs"


def test_the_x86_64_override_changes_the_architectures_and_nothing_else() -> None:
    template = load_template(TEMPLATE)
    swapped = with_architecture(template, "x86_64")
    assert swapped["Globals"]["Function"]["Architectures"] == ["x86_64"]
    layer = swapped["Resources"]["CoreLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    assert layer["Metadata"]["BuildArchitecture"] == "x86_64"
    assert "arm64" not in json.dumps(swapped)
    assert json.dumps(swapped).replace("x86_64", "arm64") == json.dumps(template)


def test_the_stand_in_recipe_hash_differs_per_architecture() -> None:
    assert recipe_hash("arm64") != recipe_hash("x86_64")
    assert recipe_hash("arm64") == recipe_hash("arm64")


def test_where_arm64_cannot_be_emulated_the_local_run_is_x86_64_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "host_arch", lambda: "x86_64")
    monkeypatch.setattr(run, "enable_arm64_emulation", lambda: "cannot mount binfmt_misc")
    plan = choose_arch("auto")
    assert (plan.arch, plan.emulated, plan.container_env) == ("x86_64", False, {})
    assert "override for the local run only" in plan.why and "cannot mount binfmt_misc" in plan.why
    with pytest.raises(SamLocalError, match="not available: cannot mount binfmt_misc"):
        choose_arch("arm64")  # asked for arm64: no silent fallback
    monkeypatch.setattr(run, "enable_arm64_emulation", lambda: None)
    plan = choose_arch("auto")
    assert (plan.arch, plan.emulated, plan.container_env) == ("arm64", True, {"QEMU_CPU": "neoverse-n1"})
