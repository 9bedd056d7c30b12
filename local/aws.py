"""The local AWS emulation: a moto server on 127.0.0.1 with the resources of template.yaml.

``python -m local.run`` and the tests need DynamoDB, SQS and Secrets Manager without an AWS account or Docker
(architecture.md section 6). The table, the queues and the API token secret are created FROM THE TEMPLATE'S OWN
PROPERTIES (key schema, GSIs, TTL, PITR, queue attributes, redrive policy, secret generation), and the functions'
environment is resolved from the template's ``Globals`` and per-function ``Environment`` the way CloudFormation
would, so the local stack and the deployed one cannot drift. A template property this module does not know raises
``LocalAwsError`` instead of being silently dropped.

Usage::

    with LocalAws() as aws:                      # starts moto, creates the template's resources
        os.environ.update(aws.env())             # or pass aws.function_env("ExportFunction") to a subprocess
        aws.client("sqs").send_message(QueueUrl=aws.env()["EXPORT_QUEUE_URL"], MessageBody="{}")

moto keeps its state in module globals shared by every moto server of the process, so two LocalAws alive at the same
time in one process see each other's resources (and secrets the code under test creates): give the second one another
``name_suffix`` (and ``SecretPrefix`` parameter). ``stop()`` deletes its own resources while another LocalAws is alive
and resets moto's whole state when it is the last one, so the next LocalAws starts empty.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import boto3
import yaml
from moto.server import ThreadedMotoServer

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"

REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"  # moto's default account; every ARN it returns carries it
STACK_NAME = "billbee-sevdesk-connector-local"
FAKE_CREDENTIAL = "testing"  # moto accepts any credentials; a fixed fake one keeps real ones out of the emulation

# The queue the export function consumes; EXPORT_DLQ_URL is derived from its RedrivePolicy (local runner only, the
# deployed functions never read the DLQ).
EXPORT_QUEUE_ID = "ExportQueue"

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")


class LocalAwsError(RuntimeError):
    """The template asks for something the local emulation cannot reproduce faithfully."""


_WRITE_LOCK = threading.RLock()


def make_dynamodb_writes_atomic() -> None:
    """DynamoDB applies a conditional write atomically; moto's server checks the condition and then writes, without
    a lock, so two threads can both pass one condition (two workers claiming one order or one contact's lease, seen
    under load). Every write of moto's DynamoDB backend is serialised here, once per process, which restores the
    guarantee the connector's leases rest on (architecture.md §4). Reads stay concurrent."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        method = getattr(DynamoDBBackend, name, None)
        if method is None or getattr(method, "_serialised", False):
            continue

        def serialised(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with _WRITE_LOCK:
                return _method(self, *args, **kwargs)

        serialised._serialised = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, functools.wraps(method)(serialised))


# --------------------------------------------------------------------------------------------------------------------
# Reading template.yaml: a YAML loader for CloudFormation's short-form tags
# --------------------------------------------------------------------------------------------------------------------


class CfnYamlLoader(yaml.SafeLoader):  # type: ignore[misc]  # no PyYAML stubs in the venv
    """SafeLoader that turns ``!Ref X``, ``!GetAtt A.B``, ``!Sub ...`` etc. into their long JSON form."""


def _construct_cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has only these three node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{tag_suffix}", node.start_mark)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # Short form "Resource.Attribute"; attribute names may themselves contain dots (Endpoint.Address).
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnYamlLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: str | Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """template.yaml as a dict, short-form intrinsics expanded (``!Ref X`` -> ``{"Ref": "X"}``)."""
    with Path(path).open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CfnYamlLoader)  # noqa: S506 - CfnYamlLoader is a SafeLoader
    if not isinstance(document, dict) or "Resources" not in document:
        raise LocalAwsError(f"{path} is not a CloudFormation template")
    return document


# --------------------------------------------------------------------------------------------------------------------
# Resolving intrinsic functions
# --------------------------------------------------------------------------------------------------------------------


class _NoValue:
    """``AWS::NoValue``: the property (or list item) disappears."""


NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass
class CreatedResource:
    logical_id: str
    type: str
    ref: str  # what !Ref returns for this type (table name, queue URL, secret ARN)
    attributes: dict[str, str] = field(default_factory=dict)  # what !GetAtt returns


class Resolver:
    """Evaluates CloudFormation intrinsics against parameters and the resources created so far.

    ``create`` is called for a resource that is referenced before it exists (the ExportQueue's RedrivePolicy names
    the DLQ's Arn), so creation order follows the references like CloudFormation's dependency graph does.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        resources: dict[str, CreatedResource],
        create: Callable[[str], CreatedResource],
    ) -> None:
        self.template = template
        self.resources = resources
        self.create = create
        self.parameters = self._parameter_values(template.get("Parameters") or {}, parameters)
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
        }
        self._conditions: dict[str, bool] = {}

    @staticmethod
    def _parameter_values(declared: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
        unknown = set(overrides) - set(declared)
        if unknown:
            raise LocalAwsError(f"parameter overrides not declared in the template: {sorted(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                values[name] = str(overrides[name])
            elif "Default" in spec:
                # CloudFormation hands every parameter to intrinsics as a string, numbers included.
                values[name] = str(spec["Default"])
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise LocalAwsError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = self._functions.get(key)
            if handler is not None:
                return handler(self, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    # -- the functions ------------------------------------------------------------------------------------------------

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        return self._resource(name).ref

    def _get_att(self, argument: Any) -> str:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = self.resolve(argument)
        resource = self._resource(logical_id)
        if attribute not in resource.attributes:
            raise LocalAwsError(
                f"!GetAtt {logical_id}.{attribute} is not emulated (known: {sorted(resource.attributes)})"
            )
        return resource.attributes[attribute]

    def _resource(self, logical_id: str) -> CreatedResource:
        if logical_id in self.resources:
            return self.resources[logical_id]
        if logical_id not in self.template["Resources"]:
            raise LocalAwsError(f"reference to unknown resource or parameter {logical_id!r}")
        return self.create(logical_id)

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is the escape for a literal ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self._get_att(name)
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def _if(self, argument: list[Any]) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _join(self, argument: list[Any]) -> str:
        separator, items = argument
        return str(separator).join(str(item) for item in self.resolve(items))

    def _select(self, argument: list[Any]) -> Any:
        index, items = self.resolve(argument)
        return items[int(index)]

    def _split(self, argument: list[Any]) -> list[str]:
        separator, text = self.resolve(argument)
        return str(text).split(separator)

    _functions: dict[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::If": _if,
        "Fn::Equals": lambda self, a: self.resolve(a[0]) == self.resolve(a[1]),
        "Fn::Not": lambda self, a: not self.resolve(a[0]),
        "Fn::And": lambda self, a: all(self.resolve(item) for item in a),
        "Fn::Or": lambda self, a: any(self.resolve(item) for item in a),
        "Condition": lambda self, a: self.condition(a),
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
    }


# --------------------------------------------------------------------------------------------------------------------
# Mapping CloudFormation resource properties to API calls
# --------------------------------------------------------------------------------------------------------------------

# CloudFormation properties of AWS::DynamoDB::Table that CreateTable takes unchanged.
_TABLE_PASSTHROUGH = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "LocalSecondaryIndexes",
    "TableClass",
    "DeletionProtectionEnabled",
    "Tags",
)
# Table properties with no observable effect on the connector's code paths, accepted and not emulated.
_TABLE_IGNORED = ("ContributorInsightsSpecification", "KinesisStreamSpecification", "ResourcePolicy")
# Queue properties are SQS attribute names already (VisibilityTimeout, RedrivePolicy, ...), values become strings.
_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
# AWS::SecretsManager::Secret GenerateSecretString keys that GetRandomPassword takes as they are.
_PASSWORD_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def _reject_unknown(logical_id: str, properties: Mapping[str, Any], known: Iterable[str]) -> None:
    unknown = set(properties) - set(known)
    if unknown:
        raise LocalAwsError(f"{logical_id}: properties {sorted(unknown)} are not emulated; teach local/aws.py")


def _attribute_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _gsi(spec: Mapping[str, Any]) -> dict[str, Any]:
    # CreateTable's GSI shape equals CloudFormation's except for the CloudFormation-only extras.
    return {k: v for k, v in spec.items() if k in ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")}


# --------------------------------------------------------------------------------------------------------------------
# LocalAws
# --------------------------------------------------------------------------------------------------------------------


class LocalAws:
    """A moto server on 127.0.0.1 (free port) holding the DynamoDB table, SQS queues and secrets of template.yaml."""

    CREATED_TYPES = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SecretsManager::Secret")
    _live: ClassVar[set[int]] = set()  # started instances of this process, which share moto's state
    _live_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        template_path: str | Path = DEFAULT_TEMPLATE,
        *,
        parameters: Mapping[str, str] | None = None,
        name_suffix: str = "local",
    ) -> None:
        """``parameters`` override the template's parameter defaults (e.g. ``BillbeeBaseUrl`` -> a sandbox URL)."""
        self.template_path = Path(template_path)
        self.parameters = dict(parameters or {})
        self.name_suffix = name_suffix
        self.resources: dict[str, CreatedResource] = {}
        self._server: ThreadedMotoServer | None = None
        self._endpoint_url: str | None = None
        self._template: dict[str, Any] | None = None
        self._resolver: Resolver | None = None
        self._creating: set[str] = set()

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            return
        # werkzeug (under moto) logs every request to stderr; the local runner's own output is what users read.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        make_dynamodb_writes_atomic()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint_url = f"http://{host}:{port}"
        with LocalAws._live_lock:
            LocalAws._live.add(id(self))

    def stop(self) -> None:
        if self._server is None:
            return
        with LocalAws._live_lock:
            LocalAws._live.discard(id(self))
            last = not LocalAws._live
        try:
            if last:
                # moto's backends are process globals: reset them so the next LocalAws inherits nothing.
                request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
                urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 - http://127.0.0.1 only
            else:
                self._delete_resources()  # another LocalAws still uses the shared state
        finally:
            self._server.stop()
            self._server = None
            self._endpoint_url = None
            self.resources.clear()
            self._resolver = None

    def __enter__(self) -> LocalAws:
        self.start()
        try:
            self.create_resources(self.template_path)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise LocalAwsError("LocalAws is not started")
        return self._endpoint_url

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` bound to the moto server, with fake credentials (never the caller's)."""
        return boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIAL,
            aws_secret_access_key=FAKE_CREDENTIAL,
            aws_session_token=FAKE_CREDENTIAL,
            region_name=REGION,
        ).client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    # -- resources ----------------------------------------------------------------------------------------------------

    def create_resources(self, template_path: str | Path | None = None) -> dict[str, CreatedResource]:
        """Create every table, queue and secret the template declares (and whose Condition holds)."""
        self.endpoint_url  # noqa: B018 - fail early with a clear message when not started
        path = Path(template_path) if template_path is not None else self.template_path
        if not path.is_absolute() and not path.exists():
            path = REPO_ROOT / path  # "template.yaml" means the project's, whatever the working directory
        self.template_path = path
        self._template = load_template(path)
        self._resolver = Resolver(self._template, self.parameters, self.resources, self._create)
        for logical_id, resource in self._template["Resources"].items():
            if resource.get("Type") in self.CREATED_TYPES and self._resolver.resource_enabled(logical_id):
                if logical_id not in self.resources:
                    self._create(logical_id)
        return dict(self.resources)

    def _create(self, logical_id: str) -> CreatedResource:
        assert self._template is not None and self._resolver is not None
        definition = self._template["Resources"][logical_id]
        kind = definition.get("Type")
        if kind not in self.CREATED_TYPES:
            raise LocalAwsError(f"{logical_id} ({kind}) is referenced but not emulated locally")
        if not self._resolver.resource_enabled(logical_id):
            raise LocalAwsError(f"{logical_id} is referenced but its Condition is false")
        if logical_id in self._creating:
            raise LocalAwsError(f"circular reference through {logical_id}")
        self._creating.add(logical_id)
        try:
            properties = self._resolver.resolve(definition.get("Properties") or {})
            creator = {
                "AWS::DynamoDB::Table": self._create_table,
                "AWS::SQS::Queue": self._create_queue,
                "AWS::SecretsManager::Secret": self._create_secret,
            }[kind]
            created = creator(logical_id, properties)
        finally:
            self._creating.discard(logical_id)
        self.resources[logical_id] = created
        return created

    def _delete_resources(self) -> None:
        for resource in reversed(list(self.resources.values())):
            if resource.type == "AWS::DynamoDB::Table":
                self.client("dynamodb").delete_table(TableName=resource.ref)
            elif resource.type == "AWS::SQS::Queue":
                self.client("sqs").delete_queue(QueueUrl=resource.ref)
            elif resource.type == "AWS::SecretsManager::Secret":
                self.client("secretsmanager").delete_secret(SecretId=resource.ref, ForceDeleteWithoutRecovery=True)

    def _physical_name(self, logical_id: str) -> str:
        return f"{logical_id}-{self.name_suffix}"

    def _create_table(self, logical_id: str, props: dict[str, Any]) -> CreatedResource:
        _reject_unknown(
            logical_id,
            props,
            (
                *_TABLE_PASSTHROUGH,
                *_TABLE_IGNORED,
                "TableName",
                "GlobalSecondaryIndexes",
                "SSESpecification",
                "StreamSpecification",
                "TimeToLiveSpecification",
                "PointInTimeRecoverySpecification",
            ),
        )
        name = props.get("TableName") or self._physical_name(logical_id)
        request: dict[str, Any] = {k: props[k] for k in _TABLE_PASSTHROUGH if k in props}
        request["TableName"] = name
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = [_gsi(index) for index in props["GlobalSecondaryIndexes"]]
        if "SSESpecification" in props:
            # CloudFormation says SSEEnabled, the API says Enabled.
            sse = props["SSESpecification"]
            request["SSESpecification"] = {
                "Enabled": sse.get("SSEEnabled", False),
                **{k: sse[k] for k in ("SSEType", "KMSMasterKeyId") if k in sse},
            }
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        dynamodb = self.client("dynamodb")
        description = dynamodb.create_table(**request)["TableDescription"]
        if "TimeToLiveSpecification" in props:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
        pitr = props.get("PointInTimeRecoverySpecification") or {}
        if pitr.get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        attributes = {"Arn": description["TableArn"]}
        if "LatestStreamArn" in description:
            attributes["StreamArn"] = description["LatestStreamArn"]
        return CreatedResource(logical_id, "AWS::DynamoDB::Table", ref=name, attributes=attributes)

    def _create_queue(self, logical_id: str, props: dict[str, Any]) -> CreatedResource:
        _reject_unknown(logical_id, props, (*_QUEUE_ATTRIBUTES, "QueueName", "Tags"))
        name = props.get("QueueName") or self._physical_name(logical_id)
        if props.get("FifoQueue") and not name.endswith(".fifo"):
            name += ".fifo"  # CloudFormation appends it too when it generates the name of a FIFO queue
        attributes = {k: _attribute_string(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
        request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            request["tags"] = {tag["Key"]: tag["Value"] for tag in props["Tags"]}
        sqs = self.client("sqs")
        url = sqs.create_queue(**request)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return CreatedResource(
            logical_id, "AWS::SQS::Queue", ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url}
        )

    def _create_secret(self, logical_id: str, props: dict[str, Any]) -> CreatedResource:
        _reject_unknown(
            logical_id,
            props,
            ("Name", "Description", "SecretString", "GenerateSecretString", "KmsKeyId", "Tags", "ReplicaRegions"),
        )
        name = props.get("Name") or self._physical_name(logical_id)
        secretsmanager = self.client("secretsmanager")
        if "GenerateSecretString" in props:
            secret_string = self._generated_secret(logical_id, props["GenerateSecretString"])
        else:
            secret_string = props.get("SecretString", "")
        request: dict[str, Any] = {"Name": name, "SecretString": secret_string}
        for key in ("Description", "KmsKeyId", "Tags"):
            if key in props:
                request[key] = props[key]
        arn = secretsmanager.create_secret(**request)["ARN"]
        return CreatedResource(logical_id, "AWS::SecretsManager::Secret", ref=arn, attributes={"Id": arn})

    def _generated_secret(self, logical_id: str, spec: Mapping[str, Any]) -> str:
        _reject_unknown(logical_id, spec, (*_PASSWORD_OPTIONS, "SecretStringTemplate", "GenerateStringKey"))
        # GetRandomPassword takes the same options as GenerateSecretString, so the generated value has the same
        # alphabet and length as the deployed one.
        options = {k: spec[k] for k in _PASSWORD_OPTIONS if k in spec}
        password: str = self.client("secretsmanager").get_random_password(**options)["RandomPassword"]
        if "SecretStringTemplate" not in spec:
            return password
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)

    # -- the functions' environment -----------------------------------------------------------------------------------

    def aws_env(self) -> dict[str, str]:
        """What points an AWS SDK at the moto server, with fake credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,  # honoured by boto3 >= 1.28 for every service
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIAL,
            "AWS_SESSION_TOKEN": FAKE_CREDENTIAL,
            # No X-Ray daemon locally; Tracing: Active in the template would make powertools try to reach one.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The environment Lambda would give this function: Globals merged with its own variables, plus aws_env()."""
        template, resolver = self._loaded()
        definition = template["Resources"].get(logical_id)
        if definition is None or definition.get("Type") not in FUNCTION_TYPES:
            raise LocalAwsError(f"{logical_id} is not a function of the template")
        own = ((definition.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        variables = {**self._global_variables(), **own}
        return {**self._stringify(resolver.resolve(variables)), **self.aws_env()}

    def env(self) -> dict[str, str]:
        """Every function's environment in one dict (Globals, each function's own variables, EXPORT_DLQ_URL)."""
        template, resolver = self._loaded()
        variables: dict[str, Any] = dict(self._global_variables())
        for definition in template["Resources"].values():
            if definition.get("Type") in FUNCTION_TYPES:
                own = ((definition.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
                variables.update(own)
        environment = self._stringify(resolver.resolve(variables))
        environment["EXPORT_DLQ_URL"] = self.dead_letter_queue_url(EXPORT_QUEUE_ID)
        return {**environment, **self.aws_env()}

    def dead_letter_queue_url(self, queue_logical_id: str) -> str:
        """URL of the queue that ``queue_logical_id``'s RedrivePolicy sends failed messages to."""
        template, resolver = self._loaded()
        properties = template["Resources"][queue_logical_id].get("Properties") or {}
        if "RedrivePolicy" not in properties:
            raise LocalAwsError(f"{queue_logical_id} has no RedrivePolicy")
        target_arn = resolver.resolve(properties["RedrivePolicy"])["deadLetterTargetArn"]
        for resource in self.resources.values():
            if resource.type == "AWS::SQS::Queue" and resource.attributes["Arn"] == target_arn:
                return resource.ref
        raise LocalAwsError(f"the dead-letter queue of {queue_logical_id} was not created")

    def resolve(self, value: Any) -> Any:
        """Evaluate a template fragment (intrinsics included) against this emulation, e.g. an IAM policy's Resource."""
        _, resolver = self._loaded()
        return resolver.resolve(value)

    def _loaded(self) -> tuple[dict[str, Any], Resolver]:
        if self._template is None or self._resolver is None:
            raise LocalAwsError("call create_resources() first")
        return self._template, self._resolver

    def _global_variables(self) -> Mapping[str, Any]:
        template, _ = self._loaded()
        function_globals = (template.get("Globals") or {}).get("Function") or {}
        return (function_globals.get("Environment") or {}).get("Variables") or {}

    @staticmethod
    def _stringify(variables: Mapping[str, Any]) -> dict[str, str]:
        # Lambda environment values are strings; a YAML number or boolean would arrive as one.
        return {name: _attribute_string(value) for name, value in variables.items()}
