"""`make sam-local`, i.e. `python -m local.sam_local` (see local/sam_local/__init__.py).

Exit status: 0 every invocation did its real work; 1 one did not (the output says which and why); 2 the set-up failed
(engine, emulation, image, sam build)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from local.aws import FAKE_CREDENTIAL, REGION, load_template
from local.sam_local.engine import (
    EMULATED_CPU,
    DockerEngine,
    SamLocalError,
    enable_arm64_emulation,
    host_arch,
    say,
    tail,
)
from local.sam_local.image import Image, lambda_image, smoke_test

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
EVENTS = REPO_ROOT / "events"
SAMPLE_CONNECTION = REPO_ROOT / "local" / "sample_connection.json"
CONNECTION_ID = "demo-shop"  # the sample connection's id
TEMPLATE_ARCH = "arm64"  # Globals.Function.Architectures in template.yaml
FUNCTIONS = ("PollFunction", "ExportFunction", "ApiFunction")
INVOKE_SECONDS = 900
EXIT_FAILED = 1
EXIT_SETUP = 2


class InvocationFailed(RuntimeError):
    """An invocation ran but did not do its work."""


@dataclass
class Plan:
    arch: str  # what the functions run as: arm64 (the template's) or x86_64 (the local override)
    why: str  # said in the output
    emulated: bool
    image: Image | None = None
    # Variables the functions need locally that the template does not declare. SAM's --env-vars sets only declared
    # variables, so the local run's copy of the built template declares them (empty; --env-vars gives the values).
    local_variables: dict[str, str] = field(default_factory=dict)

    @property
    def container_env(self) -> dict[str, str]:
        return {"QEMU_CPU": EMULATED_CPU} if self.emulated else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sam_local", description=__doc__)
    parser.add_argument("--arch", choices=("auto", "arm64", "x86_64"), default=os.environ.get("SAM_LOCAL_ARCH", "auto"),
                        help="auto (default): the template's arm64, emulated on an x86_64 host, else x86_64")
    parser.add_argument("--out", default=str(REPO_ROOT / "out" / "sam-local"), help="logs (default: %(default)s)")
    parser.add_argument("--no-pull", action="store_true", help="use AWS's image only if present, never pull it")
    parser.add_argument("--keep-engine", action="store_true", help="leave a Docker engine this run started running")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        with DockerEngine(out / "dockerd.log", keep=args.keep_engine) as engine:
            plan = prepare(engine, args.arch, allow_pull=not args.no_pull)
            template = sam_build(plan, out)
            sam_images = engine.image_ids("samcli/lambda-python")  # SAM CLI's images of image + layer
            lines = invoke_all(template, plan, out)
            engine.remove_untagged(sam_images)
    except SamLocalError as error:
        print(f"sam-local: FAILED: {error}", file=sys.stderr, flush=True)
        return EXIT_SETUP
    except InvocationFailed as error:
        print(f"sam-local: FAILED: {error}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    assert plan.image is not None
    print(flush=True)
    say(f"all {len(lines)} invocations did their work, in {time.monotonic() - started:.0f} s")
    say(f"ran as: {plan.why}")
    say(f"image: {plan.image.describe()}")
    for line in lines:
        print(f"  {line}", flush=True)
    return 0


# --------------------------------------------------------------------------------------------------------------------
# Architecture, image, build
# --------------------------------------------------------------------------------------------------------------------


def prepare(engine: DockerEngine, requested: str, *, allow_pull: bool) -> Plan:
    """Choose the architecture, get the image and prove it runs python3.13 of that architecture here."""
    plan = choose_arch(requested)
    image = plan.image = lambda_image(engine, plan.arch, allow_pull=allow_pull)
    try:
        probe = smoke_test(engine, image, plan.container_env)
    except SamLocalError as error:
        if not (plan.emulated and requested == "auto"):
            raise
        say(f"arm64 emulation does not run the image ({error}); falling back to x86_64")
        plan = Plan("x86_64", f"x86_64, an override for the local run only: arm64 emulation failed ({error})", False)
        image = plan.image = lambda_image(engine, plan.arch, allow_pull=allow_pull)
        probe = smoke_test(engine, image, plan.container_env)
    plan.local_variables = {"AWS_ENDPOINT_URL": "", **plan.container_env}
    say(f"architecture: {plan.why}")
    say(f"image: {image.describe()}; its python3.13 says: {probe}")
    return plan


def choose_arch(requested: str) -> Plan:
    host = host_arch()
    if requested == "x86_64" or (requested == "auto" and host not in ("x86_64", "arm64")):
        if host != "x86_64":
            raise SamLocalError(f"--arch x86_64 needs an x86_64 host (this one is {host})")
        return Plan("x86_64", "x86_64, an override for the local run only (asked for); the template deploys arm64",
                    False)
    if host == "arm64":
        return Plan("arm64", "arm64 as the template declares, native on this arm64 host", False)
    reason = enable_arm64_emulation()
    if reason is None:
        return Plan("arm64", f"arm64 as the template declares, emulated on this {host} host by qemu-user-static "
                             f"(binfmt_misc) as a {EMULATED_CPU} CPU (Graviton2, Lambda's arm64 core)", True)
    if requested == "arm64":
        raise SamLocalError(f"arm64 emulation is not available: {reason}")
    say(f"arm64 emulation is not available ({reason}); falling back to x86_64")
    return Plan("x86_64", f"x86_64, an override for the local run only: arm64 emulation is not available ({reason})",
                False)


def sam_build(plan: Plan, out: Path) -> Path:
    """`sam build` into .aws-sam/sam-local-<arch>/ (`make build`'s .aws-sam/build, which deploys, stays untouched);
    returns the local run's template: the built one declaring ``plan.local_variables``."""
    if shutil.which("python3.13") is None:
        raise SamLocalError("sam build needs python3.13 on PATH (the Lambda runtime); `make sam-local` finds pyenv's")
    work = REPO_ROOT / ".aws-sam" / f"sam-local-{plan.arch}"
    work.mkdir(parents=True, exist_ok=True)
    source, build_dir, cache_dir = TEMPLATE, work / "build", work / "cache"
    if plan.arch != TEMPLATE_ARCH:
        # The override: template.yaml with every arm64 turned into x86_64, for this local run only.
        source = work / "template.yaml"
        source.write_text(yaml.safe_dump(with_architecture(load_template(TEMPLATE), plan.arch), sort_keys=False))
    say(f"sam build ({plan.arch}) of {source.relative_to(REPO_ROOT)} -> {build_dir.relative_to(REPO_ROOT)}")
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - SAM CLI of the venv, fixed arguments
        [sam_command(), "build", "--template", str(source), "--build-dir", str(build_dir), "--base-dir",
         str(REPO_ROOT), "--cached", "--cache-dir", str(cache_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, env=sam_env(), timeout=1800, check=False,
    )
    (out / "sam-build.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SamLocalError(f"sam build failed (exit {result.returncode}); {out / 'sam-build.log'}:\n{tail(result)}")
    built = load_template(build_dir / "template.yaml")
    precompile(build_dir, built)
    say(f"sam build done in {time.monotonic() - started:.0f} s")
    function_globals = built.setdefault("Globals", {}).setdefault("Function", {})
    variables = function_globals.setdefault("Environment", {}).setdefault("Variables", {})
    for name in plan.local_variables:
        variables.setdefault(name, "")
    local_template = build_dir / "template.sam-local.yaml"
    local_template.write_text(yaml.safe_dump(built, sort_keys=False))
    return local_template


def precompile(build_dir: Path, built: dict[str, Any]) -> None:
    """Compile the built code's bytecode ahead, under the paths it has in the container (/var/task, /opt).

    Python writes it at the first import anyway, but a container cannot keep it (/var/task is mounted read-only, /opt
    is new in every container), and an emulated Python compiling pydantic, boto3 and powertools at every cold start
    eats much of the API function's 29 s timeout."""
    if sys.version_info[:2] != (3, 13):
        say(f"note: this Python is {sys.version.split()[0]}, not 3.13: the built code is not precompiled")
        return
    for resource in built["Resources"].values():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(properties.get("CodeUri"), str):
            folder, target = build_dir / properties["CodeUri"], "/var/task"
        elif resource.get("Type") == "AWS::Serverless::LayerVersion" and isinstance(properties.get("ContentUri"), str):
            folder, target = build_dir / properties["ContentUri"], "/opt"
        else:
            continue
        compiled = subprocess.run(  # noqa: S603 - this Python's compileall, fixed arguments
            [sys.executable, "-m", "compileall", "-q", "-j0", "-s", str(folder), "-p", target, str(folder)],
            capture_output=True, text=True, timeout=600, check=False,
        )
        if compiled.returncode != 0:
            raise SamLocalError(f"compileall failed in {folder}:\n{tail(compiled)}")


def with_architecture(template: dict[str, Any], arch: str) -> dict[str, Any]:
    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return arch if value == TEMPLATE_ARCH else value

    swapped: dict[str, Any] = swap(template)
    return swapped


def sam_command() -> str:
    sam = Path(sys.executable).parent / "sam"
    if not sam.exists():
        raise SamLocalError(f"SAM CLI is not in {sam.parent}; run `make venv`")
    return str(sam)


def sam_env() -> dict[str, str]:
    """SAM CLI's environment: moto's fake credentials (SAM hands them to the functions), never a real profile."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIAL,
            "AWS_SESSION_TOKEN": FAKE_CREDENTIAL,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "SAM_CLI_TELEMETRY": "0",
            # An emulated runtime interface emulator may take longer than SAM's default 20 s to start listening.
            "SAM_CLI_CONTAINER_CONNECTION_TIMEOUT": "120",
        }
    )
    return env


# --------------------------------------------------------------------------------------------------------------------
# The invocations
# --------------------------------------------------------------------------------------------------------------------


def invoke_all(template: Path, plan: Plan, out: Path) -> list[str]:
    """Start the local stack, then invoke the poll, one export and the API; each result checked against the stack."""
    from local.sample_shop import sample_orders
    from local.stack import LocalStack

    say("starting the local stack on 127.0.0.1: moto (template.yaml's table, queues, token secret), the Billbee "
        "sandbox with the sample shop, the sevDesk sandbox")
    with LocalStack(orders=sample_orders()) as stack, tempfile.TemporaryDirectory(prefix="sam-local-") as scratch:
        stack.save_connection(json.loads(SAMPLE_CONNECTION.read_text()))
        say(f"sample connection {CONNECTION_ID} stored through the setup code (its checks passed)")
        assert stack.aws is not None
        env_vars = {name: {**stack.aws.function_env(name), **plan.container_env} for name in FUNCTIONS}
        env_file = out / "env-vars.json"  # 127.0.0.1 URLs, resource names and moto's fake credential: nothing secret
        env_file.write_text(json.dumps(env_vars, indent=2))
        assert plan.image is not None
        invoker = Invoker(template, plan.image, env_file, out)
        sqs = stack.sqs()
        lines = []

        result = invoker.invoke("PollFunction", EVENTS / "poll_schedule.json")
        queued = messages_in(sqs, stack.queue_url)
        summary = next((c for c in result.get("connections", []) if c.get("connectionId") == CONNECTION_ID), None)
        if summary is None or summary.get("status") != "OK" or queued == 0:
            raise InvocationFailed(f"PollFunction queued nothing ({CONNECTION_ID}: {summary}; {queued} queued)")
        lines.append(f"PollFunction   events/poll_schedule.json -> {CONNECTION_ID} {summary['status']}, "
                     f"{summary.get('queued')} orders queued: {queued} messages in the export queue (moto)")

        # events/export_sqs.json names an order of Billbee's SDK fixtures, which the sample shop does not have: the
        # run's copy carries, in the same shape, a message the poll just queued, as Lambda's SQS poller would.
        event, message = export_event_from_queue(sqs, stack.queue_url, Path(scratch))
        order_id = int(json.loads(message["Body"])["orderId"])
        result = invoker.invoke("ExportFunction", event,
                                shown=f"events/export_sqs.json (its record: the queued message of order {order_id})")
        record = stack.record(CONNECTION_ID, order_id)
        if result.get("batchItemFailures") != [] or record is None or record.state.value != "EXPORTED":
            state = None if record is None else (record.state.value, record.reason, record.last_error)
            raise InvocationFailed(f"ExportFunction did not book order {order_id}: {result}; record {state}")
        sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])  # as the poller does
        voucher_id = str(record.steps.voucher_id)
        voucher = next((v for v in stack.sevdesk.dump()["vouchers"] if str(v.get("id")) == voucher_id), None)
        if voucher is None:
            raise InvocationFailed(f"order {order_id} is EXPORTED but sevDesk has no voucher {voucher_id}")
        lines.append(f"ExportFunction events/export_sqs.json    -> order {order_id} EXPORTED: sevDesk voucher "
                     f"{voucher_id} '{voucher.get('description')}', gross {voucher.get('sumGross')}, "
                     f"{len(voucher.get('positions') or [])} position(s), invoice PDF "
                     f"{'attached' if voucher.get('file') else 'MISSING'}; Billbee tag set: {record.steps.tagged}")

        # The API events carry "Bearer <placeholder>" and the fixture's order: the run's copies carry the token of the
        # stack's ApiTokenSecret (in a temporary file, never printed) and the order just exported.
        secret_id = env_vars["ApiFunction"]["API_TOKEN_SECRET_ID"]
        token = stack.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        for name, status in (("api_get_order.json", 200), ("api_export.json", 202)):
            event = api_event(EVENTS / name, token, order_id, Path(scratch))
            result = invoker.invoke("ApiFunction", event, shown=f"events/{name} (order {order_id}, the stack's token)")
            if result.get("statusCode") != status:
                raise InvocationFailed(f"ApiFunction answered {result.get('statusCode')} to {name}, not {status}")
            lines.append(f"ApiFunction    events/{name:<18} -> {status}: {api_gist(json.loads(result['body']))}")
        return lines


def messages_in(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def export_event_from_queue(sqs: Any, queue_url: str, directory: Path) -> tuple[Path, dict[str, Any]]:
    """events/export_sqs.json with its record replaced by one message received from the export queue."""
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, AttributeNames=["All"],
                                   VisibilityTimeout=INVOKE_SECONDS)
    if not received.get("Messages"):
        raise InvocationFailed("the export queue gave no message to export")
    message: dict[str, Any] = received["Messages"][0]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    event = json.loads((EVENTS / "export_sqs.json").read_text())
    record = event["Records"][0]
    record.update(
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "md5OfBody": message["MD5OfBody"],
            "attributes": {key: message["Attributes"].get(key, value) for key, value in record["attributes"].items()},
            "eventSourceARN": arn,
            "awsRegion": REGION,
        }
    )
    path = directory / "export_sqs.json"
    path.write_text(json.dumps(event))
    return path, message


def api_event(event_path: Path, token: str, order_id: int, directory: Path) -> Path:
    """A copy of an API event with the stack's bearer token, and ``order_id`` in place of the fixture's order."""
    fixture_body = json.loads((EVENTS / "export_sqs.json").read_text())["Records"][0]["body"]
    fixture_order = str(json.loads(fixture_body)["orderId"])
    event = json.loads(event_path.read_text().replace(fixture_order, str(order_id)))
    event["headers"]["authorization"] = f"Bearer {token}"
    copy = directory / event_path.name
    copy.write_text(json.dumps(event))
    copy.chmod(0o600)
    return copy


def api_gist(body: Any) -> str:
    if isinstance(body, dict) and "state" in body:
        return f"order {body.get('orderId')} {body['state']}, voucher {body.get('voucherId')}"
    if isinstance(body, dict) and isinstance(body.get("orders"), list):
        return "; ".join(f"order {o.get('orderId')}: {o.get('outcome')} ({o.get('detail')})" for o in body["orders"])
    return json.dumps(body)[:200]


class Invoker:
    def __init__(self, template: Path, image: Image, env_file: Path, out: Path) -> None:
        self.template = template
        self.image = image
        self.env_file = env_file
        self.out = out

    def invoke(self, function: str, event: Path, *, shown: str | None = None) -> dict[str, Any]:
        """`sam local invoke`; prints and returns the function's result, raises when it failed."""
        shown = shown or str(event.relative_to(REPO_ROOT))
        options = ["--env-vars", str(self.env_file.relative_to(REPO_ROOT)), "--docker-network", "host"]
        if not self.image.real:
            options += ["--invoke-image", self.image.name]
        print(flush=True)
        say(f"sam local invoke {function} -e {shown} {' '.join(options)}")
        # SAM CLI's own command line, run through local/sam_local/sam_cli.py so that `--docker-network host` gives the
        # container Docker's host network (aws/aws-sam-cli#4236).
        command = [
            sys.executable, "-m", "local.sam_local.sam_cli", "local", "invoke", function,
            "--template", str(self.template), "--event", str(event), *options, "--skip-pull-image", "--region", REGION,
        ]
        started = time.monotonic()
        try:
            result = subprocess.run(  # noqa: S603 - this Python, fixed arguments
                command, cwd=REPO_ROOT, capture_output=True, text=True, env=sam_env(), timeout=INVOKE_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise InvocationFailed(f"sam local invoke {function} did not finish within {INVOKE_SECONDS} s") from error
        log = self.out / f"{function}-{event.stem}.log"
        log.write_text(result.stderr)
        output = result.stdout.strip().splitlines()
        if result.returncode != 0 or not output:
            raise InvocationFailed(f"sam local invoke {function} failed (exit {result.returncode}); {log}:\n"
                                   f"{tail(result)}")
        try:
            answer = json.loads(output[-1])
        except ValueError as error:
            raise InvocationFailed(f"{function} printed no JSON result: {output[-1][:300]}; see {log}") from error
        duration = re.search(r"REPORT RequestId: \S+\s+Init Duration: [\d.]+ ms\s+Duration: ([\d.]+) ms", result.stderr)
        function_time = f"function {float(duration.group(1)) / 1000:.1f} s, " if duration else ""
        say(f"{function} result ({function_time}sam local invoke {time.monotonic() - started:.0f} s; "
            f"log {log.relative_to(REPO_ROOT)}):")
        print(json.dumps(readable(answer), indent=2, ensure_ascii=False)[:4000], flush=True)
        if isinstance(answer, dict) and "errorType" in answer:
            raise InvocationFailed(f"{function} raised {answer['errorType']}: {answer.get('errorMessage')}; see {log}")
        if not isinstance(answer, dict):
            raise InvocationFailed(f"{function} returned {type(answer).__name__}, not an object; see {log}")
        return answer


def readable(answer: Any) -> Any:
    """An API answer with its JSON body shown as JSON, not as one escaped string."""
    if isinstance(answer, dict) and isinstance(answer.get("body"), str):
        try:
            return {**answer, "body": json.loads(answer["body"])}
        except ValueError:
            return answer
    return answer


if __name__ == "__main__":
    sys.exit(main())
