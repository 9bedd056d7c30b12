"""Contract checks: validate recorded sandbox exchanges against the official Billbee and sevDesk API specs.

The sandboxes record every HTTP exchange (``Exchange.as_json()`` in ``local/sandbox/base.py``, one per line in
``requests.jsonl``). ``ContractChecker.check(exchange)`` validates the request and the response of one exchange
against the official OpenAPI documents in ``SPECS_DIR`` (default ``<repo>/../shared/specs``) and returns every
violation as a readable string; ``check_log(path)`` does the same for a whole ``requests.jsonl``.

Both official documents reject traffic the real APIs accept (``shared/specs/ERRATA.md``). The checker therefore
validates against the official document plus an explicit list of corrections, each one a named function that
transforms the loaded spec dict:

- ``ERRATA_CORRECTIONS``: exactly the entries of ``ERRATA.md`` (sevDesk 1-5, Billbee 1-3);
- ``DOC_BACKED_CORRECTIONS``: further deviations our docs (``shared/docs/*.md``) describe, kept apart so the lead
  engineer can decide on each one. Every correction has a test proving it is needed.

Everything else that deviates from the spec is reported.

Validation uses openapi-core 0.23.1 as ERRATA.md describes (``OpenAPI.from_dict(spec,
config=Config(spec_validator_cls=None))``; the sevDesk document does not pass strict spec validation). Measured on
the dev machine: importing openapi-core ~0.3 s; parsing the sevDesk YAML 0.11 s (C loader) and the Billbee JSON
2 ms, once per process; copying, correcting and wrapping a spec 15-45 ms per correction set (cached); a check takes
1-2 ms per exchange, and ~3 ms per order in a Billbee order list (a full 250-order page ~0.8 s).

Rules for what is checked (decided here, see ``check``):

- The request is always checked (method + path exist, security headers present, path/query/header parameters,
  body media type and schema), also when a fault was injected: faults change answers, never requests.
- Billbee only: query keys the operation does not declare are reported. Billbee's document is generated from its
  server code and lists every parameter, so an unknown key is a typo that Billbee ignores silently (e.g.
  ``includePdf`` on CreateInvoice, billbee-pitfalls.md #15) or the unverified indexed array form ``tag[0]=``
  (billbee-pitfalls.md #7). sevDesk is not checked for this: its document omits paging and many filter parameters
  (sevdesk-pitfalls.md #17), so unknown keys would mostly be false alarms.
- The response is skipped when ``status`` is null (connection dropped / client timed out) or ``fault`` is set (the
  answer is synthetic), and when the request's operation is not in the spec (already reported).
- 401/403 answers are skipped when the operation documents no such status: they come from the sandbox's
  ``authenticate()`` and Billbee's document lists no error status at all.
- 429 is accepted for Billbee when it carries ``Retry-After``: ``info.description`` documents throttling globally
  ("the API will return a HTTP 429 status code and a Retry-After-Header"), not per operation. sevDesk documents no
  429 anywhere (sevdesk-api.md §1), so an unfaulted 429 from the sevDesk sandbox is reported.
- A sevDesk 2xx carrying the error envelope (``{"objects": null, "error": {...}}``) is checked for that envelope
  only: "Some failures come back as HTTP 200 with an ``error`` object" (sevdesk-api.md §1, sevdesk-pitfalls.md #18).
- Every other status must be documented for the operation (or by a ``default`` response); a documented status
  with a JSON schema gets its body validated; a body that is not JSON (PDF bytes, recorded as null) is not.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeGuard

import yaml
from jsonschema.exceptions import ValidationError as SchemaError
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import ImmutableMultiDict

REDACTED = "***"  # how local/sandbox/base.py records secret headers
MAX_VIOLATIONS = 60  # per exchange; a wrong list response can otherwise produce thousands of lines

Spec = dict[str, Any]


# ---------------------------------------------------------------------------------------------------------------
# Spec files
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiSpec:
    api: str
    file: str
    host_url: str  # scheme + host of the document's first server; request paths carry the full /api/v1/... path
    base_path: str  # path part of the server URL, prefixed to every path in the document


API_SPECS: dict[str, ApiSpec] = {
    # servers: https://my.sevdesk.de/api/v1, paths /Voucher/... (ERRATA.md, "sevDesk")
    "sevdesk": ApiSpec("sevdesk", "sevdesk-openapi.yaml", "https://my.sevdesk.de", "/api/v1"),
    # servers: https://app.billbee.io, paths /api/v1/... (ERRATA.md, "Billbee"; OpenAPI 3 conversion of the swagger)
    "billbee": ApiSpec("billbee", "billbee-openapi3.json", "https://app.billbee.io", ""),
}


def default_specs_dir() -> Path:
    """``$SPECS_DIR`` or ``../shared/specs`` next to the repository root."""
    env = os.environ.get("SPECS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "specs"


@functools.lru_cache(maxsize=8)
def _load_raw_spec(path: str) -> Spec:
    """The official document as a dict, parsed once per process (callers deep-copy before changing it)."""
    with open(path, encoding="utf-8") as handle:
        if path.endswith(".json"):
            loaded = json.load(handle)
        else:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster on 670 kB
            loaded = yaml.load(handle, Loader=loader)  # noqa: S506 - a SafeLoader
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not an OpenAPI document")
    return loaded


# ---------------------------------------------------------------------------------------------------------------
# Helpers for spec transformations
# ---------------------------------------------------------------------------------------------------------------
_NOT_SCHEMA_KEYS = frozenset({"example", "examples", "x-example"})  # data, not schemas: never rewrite them


def _walk_dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in the document (depth first), skipping example payloads."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(v for k, v in current.items() if k not in _NOT_SCHEMA_KEYS)
        elif isinstance(current, list):
            stack.extend(current)


def _property_maps(spec: Spec) -> Iterator[dict[str, Any]]:
    """Every ``properties`` map of every (component or inline) schema in the document."""
    for node in _walk_dicts(spec):
        props = node.get("properties")
        if isinstance(props, dict) and all(isinstance(v, dict) for v in props.values()):
            yield props


def _component(spec: Spec, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


def _resolve(spec: Spec, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _component(spec, schema["$ref"].rsplit("/", 1)[-1])
    return schema


# A branch of ``anyOf`` that admits null. OpenAPI 3.0's ``nullable`` only works next to a ``type`` in the same schema
# object, so a ``$ref`` or an ``anyOf`` can only be made nullable by such a branch. The marker lets the error
# formatter hide this branch's "is not one of [None]" noise.
NULL_MARKER = "x-contract-null-branch"


def _null_branch() -> dict[str, Any]:
    return {"enum": [None], NULL_MARKER: True}


def _make_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The same schema, additionally accepting null (an ``enum`` gets null too, as OpenAPI 3.0.3 requires)."""
    if "type" in schema and "$ref" not in schema:
        schema["nullable"] = True
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if "$ref" in schema or any(k in schema for k in ("anyOf", "oneOf", "allOf")):
        if any(NULL_MARKER in b for b in schema.get("anyOf", ())):
            return schema
        return {"anyOf": [schema, _null_branch()]}
    return schema  # no type assertion at all: null is already valid


def _id_schema(original: dict[str, Any]) -> dict[str, Any]:
    """An id that may be an integer or a string of digits, keeping an enum if the original had one."""
    enum = original.get("enum")
    as_string: dict[str, Any] = {"type": "string", "pattern": r"^[0-9]+$"}
    as_integer: dict[str, Any] = {"type": "integer"}
    if enum is not None:
        as_string = {"type": "string", "enum": [str(v) for v in enum]}
        as_integer = {"type": "integer", "enum": [int(v) for v in enum if str(v).isdigit()]}
    out: dict[str, Any] = {"anyOf": [as_integer, as_string]}
    if "description" in original:
        out["description"] = original["description"]
    if original.get("nullable") is True:
        out["anyOf"].append(_null_branch())
    return out


def _response_data_roots(spec: Spec) -> list[dict[str, Any]]:
    """The schemas describing sevDesk's success data: inline 2xx JSON schemas (inside the ``objects`` envelope, which
    itself is never null on success) and the components reachable only from 2xx responses (``Model_*Response``;
    request components such as ``Model_Voucher`` stay strict)."""
    components = spec.get("components", {}).get("schemas", {})

    def reachable(roots: list[Any]) -> set[str]:
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            for node in _walk_dicts(stack.pop()):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                    name = ref.rsplit("/", 1)[-1]
                    if name not in seen and name in components:
                        seen.add(name)
                        stack.append(components[name])
        return seen

    inline: list[dict[str, Any]] = []
    response_roots: list[Any] = []
    request_roots: list[Any] = []
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            request_roots += [operation.get("requestBody", {}), operation.get("parameters", [])]
            for status, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json", {})
                if not str(status).startswith("2") or "schema" not in media:
                    continue
                schema = media["schema"]
                envelope = schema.get("properties", {}).get("objects")
                inline.append(envelope if isinstance(envelope, dict) else schema)
                response_roots.append(schema)
    response_only = reachable(response_roots) - reachable(request_roots)
    return inline + [components[name] for name in sorted(response_only)]


def _is_id_either_way(schema: dict[str, Any]) -> bool:
    return "anyOf" in schema and {b.get("type") for b in schema["anyOf"]} >= {"integer", "string"}


# ---------------------------------------------------------------------------------------------------------------
# Corrections from ERRATA.md (and only those)
# ---------------------------------------------------------------------------------------------------------------
def sevdesk_erratum_1_save_voucher_requires_voucher_pos_save(spec: Spec) -> None:
    """ERRATA.md sevDesk 1: "``POST /Voucher/Factory/saveVoucher``: schema ``saveVoucher`` has ``required: [voucher,
    voucherPos]`` but its property is ``voucherPosSave`` (clients send ``voucherPosSave``; see
    ``../docs/sevdesk-api.md`` §3)."
    """
    schema = _component(spec, "saveVoucher")
    schema["required"] = ["voucherPosSave" if r == "voucherPos" else r for r in schema.get("required", [])]


def sevdesk_erratum_2_voucher_does_not_require_tax_type(spec: Spec) -> None:
    """ERRATA.md sevDesk 2: "``Model_Voucher`` requires ``taxType``, a bookkeeping-1.0 field; 2.0 accounts use
    ``taxRule``, and ``taxType`` should not be sent (``../docs/sevdesk-api.md`` §4)."
    """
    schema = _component(spec, "Model_Voucher")
    schema["required"] = [r for r in schema.get("required", []) if r != "taxType"]


def sevdesk_erratum_3_voucher_date_accepts_timestamp_or_german_date(spec: Spec) -> None:
    """ERRATA.md sevDesk 3: "``voucherDate`` is declared ``format: date-time`` but described as "timestamp or
    dd.mm.yyyy"; both forms are accepted by the API."

    Every ``voucherDate`` property therefore accepts an RFC 3339 date-time (what sevDesk returns), ``dd.mm.yyyy``
    and a Unix timestamp (integer, or a string of digits as form-encoded clients send it).
    """
    for props in _property_maps(spec):
        original = props.get("voucherDate")
        if original is None or "anyOf" in original:
            continue
        branches: list[dict[str, Any]] = [
            {"type": "string", "format": "date-time"},
            {"type": "string", "pattern": r"^\d{2}\.\d{2}\.\d{4}$"},
            {"type": "integer"},
            {"type": "string", "pattern": r"^\d{9,11}$"},
        ]
        if original.get("nullable") is True:
            branches.append(_null_branch())
        props["voucherDate"] = {k: v for k, v in original.items() if k in ("description", "readOnly")}
        props["voucherDate"]["anyOf"] = branches


def sevdesk_erratum_4_reference_ids_accept_strings_or_integers(spec: Spec) -> None:
    """ERRATA.md sevDesk 4: "Ids in references (``taxRule.id``, ``accountDatev.id``, ``checkAccount.id``) come back as
    strings and are accepted as strings or integers; the community-patched variant declares some as integers."

    A reference is any schema with both ``id`` and ``objectName`` properties (``{"id": .., "objectName": ..}``);
    its ``id`` accepts an integer or a string of digits. An ``enum`` on the id (``taxRule.id``) is kept for both forms.
    """
    for props in _property_maps(spec):
        if "id" not in props or "objectName" not in props:
            continue
        original = props["id"]
        if _is_id_either_way(original) or original.get("type") not in ("integer", "string", "number"):
            continue
        props["id"] = _id_schema(original)


def sevdesk_erratum_5_responses_wrapped_in_objects(spec: Spec) -> None:
    """ERRATA.md sevDesk 5: "Responses are wrapped in ``{"objects": ...}``; several response schemas omit the wrapper
    (``sevdesk-openapi.community-patched.yaml`` corrects many of these)."

    Every 2xx JSON response schema without an ``objects`` property is wrapped as ``{"objects": <schema>}``; the
    wrapper is required everywhere, so an unwrapped answer (the spec's own shape) is reported. Error responses
    (``validationError``: ``{"error": ...}``) are left alone.
    """
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if not str(status).startswith("2"):
                    continue
                media = response.get("content", {}).get("application/json")
                if not media or "schema" not in media:
                    continue
                schema = media["schema"]
                resolved = _resolve(spec, schema)
                if "objects" in resolved.get("properties", {}):
                    wrapped = dict(resolved)  # copy: a component may be shared with non-response uses
                    wrapped["required"] = sorted({*wrapped.get("required", []), "objects"})
                    wrapped.setdefault("type", "object")
                else:
                    wrapped = {"type": "object", "required": ["objects"], "properties": {"objects": schema}}
                media["schema"] = wrapped


def billbee_erratum_1_every_property_nullable(spec: Spec) -> None:
    """ERRATA.md Billbee 1: "Swagger 2.0 has no ``nullable``; real responses carry ``null`` in many properties
    (``ErrorMessage``, ``Id``, ``OrderNumber``, ``PayedAt``, ``Buyer``, ``Seller.BillbeeShopId``, ...:
    ``billbee-examples/ithoc-mock_real_orders_page_redacted.json``). Treat every property as nullable."
    """
    for props in _property_maps(spec):
        for name, schema in list(props.items()):
            props[name] = _make_nullable(schema)


def billbee_erratum_2_error_description_string_or_int(spec: Spec) -> None:
    """ERRATA.md Billbee 2: "``ErrorDescription`` is declared an integer enum; real responses carry the name as a
    string (``"NoError"``)."
    """
    for props in _property_maps(spec):
        original = props.get("ErrorDescription")
        if original is None or "anyOf" in original:
            continue
        branches: list[dict[str, Any]] = [
            {k: v for k, v in original.items() if k not in ("readOnly", "nullable")},
            {"type": "string"},
        ]
        if original.get("nullable") is True:
            branches.append(_null_branch())
        replacement: dict[str, Any] = {k: v for k, v in original.items() if k == "readOnly"}
        replacement["anyOf"] = branches
        props["ErrorDescription"] = replacement


def billbee_erratum_3_shipping_profile_id_string_or_int(spec: Spec) -> None:
    """ERRATA.md Billbee 3: "``OrderItem.ShippingProfileId`` is declared a string; Billbee's own PHP SDK fixture
    (``billbee-examples/php-sdk_get_orders_response.json``) has an integer."

    The cited fixture has the integer on the *order* (``Data[0].ShippingProfileId: 12345``; its order item has no
    ``ShippingProfileId``), and both ``Order`` and ``OrderItem`` declare the property a string, so both accept a
    string or an integer (billbee-pitfalls.md #13 names no model either).
    """
    for model in ("Billbee.Interfaces.BillbeeAPI.Model.Order", "Billbee.Interfaces.BillbeeAPI.Model.OrderItem"):
        props = _component(spec, model)["properties"]
        branches: list[dict[str, Any]] = [{"type": "string"}, {"type": "integer"}]
        if props["ShippingProfileId"].get("nullable") is True:  # erratum 1 ran first
            branches.append(_null_branch())
        props["ShippingProfileId"] = {"anyOf": branches}


# ---------------------------------------------------------------------------------------------------------------
# Doc-backed corrections: NOT in ERRATA.md; each cites the doc that shows the real API accepts or sends it.
# Listed separately so the lead engineer can accept or drop each one.
# ---------------------------------------------------------------------------------------------------------------
def sevdesk_doc_upload_temp_file_is_multipart(spec: Spec) -> None:
    """sevdesk-api.md §3 step 1: "``POST /Voucher/Factory/uploadTempFile``, **multipart/form-data, field ``file``**
    (the spec wrongly says media type ``form-data``)"; sevdesk-pitfalls.md #17: "The uploadTempFile media type is
    given as ``form-data``; the real one is multipart with field ``file``."

    Renames the request media type and makes ``file`` required (the upload is pointless without it).
    """
    content = spec["paths"]["/Voucher/Factory/uploadTempFile"]["post"]["requestBody"]["content"]
    if "form-data" in content:
        media = content.pop("form-data")
        media["schema"].setdefault("required", ["file"])
        content["multipart/form-data"] = media


def sevdesk_doc_voucher_pos_uses_2_0_fields(spec: Spec) -> None:
    """sevdesk-pitfalls.md #11: "The spec marks ``accountingType`` **and** ``accountDatev`` as required on VoucherPos
    ... send only the 2.0 pair"; sevdesk-api.md §3: ``accountDatev`` "(2.0; replaces ``accountingType``)", and
    "``net`` (bool: ``true`` → ``sumNet`` counts, ``false`` → ``sumGross`` counts), ``sumNet`` or ``sumGross``";
    §2: "1.0 positions carry ``accountingType`` and ``accountDatev:null``", i.e. 2.0 positions do the reverse.

    ``Model_VoucherPos`` (request) no longer requires ``accountingType`` nor both sums (one of ``sumNet`` /
    ``sumGross`` is still required); ``Model_VoucherPosResponse`` no longer requires ``accountingType`` ([JRS]'s live
    fixture ``tests/fixtures/write_voucher_save_create.json`` has positions without it).
    """
    request = _component(spec, "Model_VoucherPos")
    request["required"] = [r for r in request.get("required", []) if r not in ("accountingType", "sumNet", "sumGross")]
    request["anyOf"] = [{"required": ["sumGross"]}, {"required": ["sumNet"]}]
    response = _component(spec, "Model_VoucherPosResponse")
    response["required"] = [r for r in response.get("required", []) if r != "accountingType"]


def sevdesk_doc_tax_rule_enum_incomplete(spec: Spec) -> None:
    """sevdesk-api.md §4: "The schema enum for ``Voucher.taxRule.id`` (``'1','2','3','4','5','11'``) is incomplete;
    vouchers with 17 [STR], 22 [WHM] and 9/12/14 work." (also sevdesk-pitfalls.md #11).

    Drops the enum from every ``taxRule.id`` (which rule fits which account is checked by sevDesk with a 422).
    """
    for props in _property_maps(spec):
        tax_rule = props.get("taxRule")
        if not tax_rule or "id" not in tax_rule.get("properties", {}):
            continue
        for node in _walk_dicts(tax_rule["properties"]["id"]):
            if NULL_MARKER not in node:  # the null branch's enum [null] is not a tax-rule list
                node.pop("enum", None)


def sevdesk_doc_voucher_status_150_750(spec: Spec) -> None:
    """sevdesk-api.md §3: "**Status lifecycle:** 50 draft → 100 open → 750 partially paid → 1000 paid (150 =
    "transferred")"; sevdesk-pitfalls.md #30: "The spec text now lists 150 and 750, but the schema enum still has only
    50/100/1000."

    Adds 150 and 750 to the voucher status enums of responses (requests stay limited to 50/100/1000).
    """
    props = _component(spec, "Model_VoucherResponse")["properties"]
    enum = props["status"].get("enum")
    if enum is not None:
        props["status"]["enum"] = sorted({*enum, "150", "750"}, key=int)


_SCALAR_STRINGS: dict[str, dict[str, Any]] = {
    "boolean": {"type": "string", "enum": ["0", "1", "true", "false"]},
    "integer": {"type": "string", "pattern": r"^-?[0-9]+$"},
    "number": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
}


def sevdesk_doc_response_scalars_are_strings(spec: Spec) -> None:
    """sevdesk-api.md §1: "Scalars come back as **strings** (``"id":"123"``, ``"status":"1000"``,
    ``"sumGross":"87.49"``) [JRS][GZ][JM]"; sevdesk-pitfalls.md #17: "Scalars are strings." Most response schemas
    already say ``string``; the booleans and numbers that do not (``VoucherPos.net``/``isAsset``, which [JRS]'s live
    fixture ``write_voucher_save_create.json`` has as ``"1"``/``"0"``) also accept their string form.

    Success data only (``_response_data_roots``); requests must still send real JSON booleans and numbers
    (sevdesk-api.md §3: "Use real JSON booleans, not ``"false"`` strings").
    """
    for root in _response_data_roots(spec):
        for props in _property_maps(root):
            for name, schema in list(props.items()):
                as_string = _SCALAR_STRINGS.get(str(schema.get("type")))
                if as_string is None or "$ref" in schema:
                    continue
                original = {k: v for k, v in schema.items() if k not in ("nullable", "description", "readOnly")}
                branches = [original, dict(as_string)]
                if schema.get("nullable") is True:
                    branches.append(_null_branch())
                replacement: dict[str, Any] = {k: v for k, v in schema.items() if k in ("description", "readOnly")}
                replacement["anyOf"] = branches
                props[name] = replacement


def sevdesk_fixture_response_properties_nullable(spec: Spec) -> None:
    """No sentence in our docs; evidence: [JRS] (``jernoxit/sevdesk-rs``, cited by sevdesk-api.md as "fixtures
    recorded live on a test account") - ``tests/fixtures/contact_list_by_customer_number.json`` has ``surename``,
    ``familyname``, ``titel``, ``vatNumber``, ... as ``null``, ``write_voucher_save_create.json`` has ``enshrined``
    and ``recurringInterval`` (an enum) as ``null``; the document declares them not nullable. The same problem as
    ERRATA.md Billbee 1, but for sevDesk's success data only.

    Every property of the success data (``_response_data_roots``) accepts null; the ``objects`` envelope does not,
    and request schemas stay as declared.
    """
    for root in _response_data_roots(spec):
        for props in _property_maps(root):
            for name, schema in list(props.items()):
                props[name] = _make_nullable(schema)


# Billbee date-times: "2023-04-29T13:22:18.797" (no offset, 0-7 fraction digits), "...+00:00", "...Z", and the
# official C# SDK's request form "yyyy-MM-dd HH:mm".
BILLBEE_DATE_TIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:?\d{2})?$"


def billbee_doc_naive_timestamps(spec: Spec) -> None:
    """billbee-pitfalls.md #5: "Real responses carry naive local-looking values such as ``"InvoiceDate":
    "2023-04-29T13:22:18.797"`` ... The zone is undocumented"; billbee-examples/README.md: "Naive timestamps with no
    offset and 2-3 fractional digits"; billbee-api.md §4: "[CS] sends ``yyyy-MM-dd HH:mm`` (minute precision, no
    zone); [PHP] sends ISO-8601 with offset".

    RFC 3339 (``format: date-time``) requires an offset, so every Billbee date-time becomes a pattern that admits
    the forms above and still rejects anything that is not a date-time.
    """
    for node in _walk_dicts(spec):
        if node.get("type") == "string" and node.get("format") == "date-time":
            node.pop("format")
            node["pattern"] = BILLBEE_DATE_TIME


@dataclass(frozen=True)
class Correction:
    name: str
    api: Literal["sevdesk", "billbee"]
    kind: Literal["erratum", "doc-backed"]
    source: str
    apply: Callable[[Spec], None]


ERRATA_CORRECTIONS: tuple[Correction, ...] = (
    Correction("sevdesk_erratum_1", "sevdesk", "erratum", "ERRATA.md sevDesk 1",
               sevdesk_erratum_1_save_voucher_requires_voucher_pos_save),
    Correction("sevdesk_erratum_2", "sevdesk", "erratum", "ERRATA.md sevDesk 2",
               sevdesk_erratum_2_voucher_does_not_require_tax_type),
    Correction("sevdesk_erratum_3", "sevdesk", "erratum", "ERRATA.md sevDesk 3",
               sevdesk_erratum_3_voucher_date_accepts_timestamp_or_german_date),
    Correction("sevdesk_erratum_4", "sevdesk", "erratum", "ERRATA.md sevDesk 4",
               sevdesk_erratum_4_reference_ids_accept_strings_or_integers),
    Correction("sevdesk_erratum_5", "sevdesk", "erratum", "ERRATA.md sevDesk 5",
               sevdesk_erratum_5_responses_wrapped_in_objects),
    Correction("billbee_erratum_1", "billbee", "erratum", "ERRATA.md Billbee 1",
               billbee_erratum_1_every_property_nullable),
    Correction("billbee_erratum_2", "billbee", "erratum", "ERRATA.md Billbee 2",
               billbee_erratum_2_error_description_string_or_int),
    Correction("billbee_erratum_3", "billbee", "erratum", "ERRATA.md Billbee 3",
               billbee_erratum_3_shipping_profile_id_string_or_int),
)  # fmt: skip

DOC_BACKED_CORRECTIONS: tuple[Correction, ...] = (
    Correction("sevdesk_doc_upload_multipart", "sevdesk", "doc-backed", "sevdesk-api.md §3, sevdesk-pitfalls.md #17",
               sevdesk_doc_upload_temp_file_is_multipart),
    Correction("sevdesk_doc_voucher_pos_2_0", "sevdesk", "doc-backed", "sevdesk-api.md §2-3, sevdesk-pitfalls.md #11",
               sevdesk_doc_voucher_pos_uses_2_0_fields),
    Correction("sevdesk_doc_tax_rule_enum", "sevdesk", "doc-backed", "sevdesk-api.md §4, sevdesk-pitfalls.md #11",
               sevdesk_doc_tax_rule_enum_incomplete),
    Correction("sevdesk_doc_voucher_status", "sevdesk", "doc-backed", "sevdesk-api.md §3, sevdesk-pitfalls.md #30",
               sevdesk_doc_voucher_status_150_750),
    Correction("sevdesk_doc_response_scalars", "sevdesk", "doc-backed", "sevdesk-api.md §1, sevdesk-pitfalls.md #17",
               sevdesk_doc_response_scalars_are_strings),
    Correction("sevdesk_fixture_response_nulls", "sevdesk", "doc-backed",
               "[JRS] live fixtures only (no sentence in our docs)", sevdesk_fixture_response_properties_nullable),
    Correction("billbee_doc_naive_timestamps", "billbee", "doc-backed", "billbee-pitfalls.md #5, billbee-api.md §4",
               billbee_doc_naive_timestamps),
)  # fmt: skip

ALL_CORRECTIONS: tuple[Correction, ...] = ERRATA_CORRECTIONS + DOC_BACKED_CORRECTIONS
CORRECTIONS_BY_NAME: dict[str, Correction] = {c.name: c for c in ALL_CORRECTIONS}


def corrected_spec(api: str, specs_dir: Path, corrections: Iterable[str]) -> Spec:
    """A deep copy of the official document of ``api`` with the named corrections applied in registry order."""
    spec = copy.deepcopy(_load_raw_spec(str(specs_dir / API_SPECS[api].file)))
    wanted = set(corrections)
    for correction in ALL_CORRECTIONS:
        if correction.api == api and correction.name in wanted:
            correction.apply(spec)
    return spec


# ---------------------------------------------------------------------------------------------------------------
# Loaded, corrected specs (cached per process)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Route:
    template: str  # the document's path key, e.g. /orders/{id}/tags
    pattern: re.Pattern[str]
    item: dict[str, Any]


@dataclass
class _LoadedSpec:
    api: ApiSpec
    spec: Spec
    openapi: OpenAPI
    routes: list[_Route]
    http_schemes: list[str]  # HTTP auth schemes (e.g. "basic") whose redacted header needs a placeholder
    documents_global_429: bool

    def find_route(self, path: str) -> _Route | None:
        for route in self.routes:
            if route.pattern.match(path):
                return route
        return None


_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _compile_routes(api: ApiSpec, spec: Spec) -> list[_Route]:
    routes = []
    for template, item in spec.get("paths", {}).items():
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(api.base_path + template))
        routes.append(_Route(template, re.compile(regex + "/?$"), item))
    # Literal segments win over templates (/orders/CreateInvoice/{id} before /orders/{id}/...), as in openapi-core.
    routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
    return routes


@functools.lru_cache(maxsize=16)
def _load(api: str, specs_dir: str, corrections: frozenset[str]) -> _LoadedSpec:
    spec = corrected_spec(api, Path(specs_dir), corrections)
    schemes = spec.get("components", {}).get("securitySchemes", {})
    return _LoadedSpec(
        api=API_SPECS[api],
        spec=spec,
        openapi=OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None)),
        routes=_compile_routes(API_SPECS[api], spec),
        http_schemes=[s["scheme"] for s in schemes.values() if s.get("type") == "http" and "scheme" in s],
        documents_global_429="429" in str(spec.get("info", {}).get("description", "")),
    )


# ---------------------------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------------------------
# Endpoints no version of the official spec documents but that the real API serves and public clients use; the
# connector calls each one deliberately. Listed here, with the source, so every other unknown path still fails.
UNDOCUMENTED_ENDPOINTS: dict[tuple[str, str, str], str] = {
    ("sevdesk", "GET", "/api/v1/StaticCountry"): (
        "country ids for contact addresses; sevdesk-api.md §7 ('the undocumented GET /StaticCountry'), "
        "sevdesk-SOURCE.md ('No version of the spec documents ... GET /StaticCountry')"
    ),
}


class ContractChecker:
    """Checks recorded exchanges against the official specs plus the corrections named in ``corrections``.

    ``corrections=None`` applies every correction (errata and doc-backed); pass a subset (e.g. ``()`` for the raw
    documents) to see what a correction changes.
    """

    def __init__(self, specs_dir: Path | str | None = None, *, corrections: Iterable[str] | None = None) -> None:
        self.specs_dir = Path(specs_dir) if specs_dir is not None else default_specs_dir()
        names = [c.name for c in ALL_CORRECTIONS] if corrections is None else list(corrections)
        unknown = [n for n in names if n not in CORRECTIONS_BY_NAME]
        if unknown:
            raise ValueError(f"unknown corrections {unknown}; known: {sorted(CORRECTIONS_BY_NAME)}")
        self.corrections = frozenset(names)

    def loaded(self, api: str) -> _LoadedSpec:
        if api not in API_SPECS:
            raise KeyError(api)
        wanted = frozenset(n for n in self.corrections if CORRECTIONS_BY_NAME[n].api == api)
        return _load(api, str(self.specs_dir.resolve()), wanted)

    # -- public API ----------------------------------------------------------------------------------------------
    def check(self, exchange: dict[str, Any]) -> list[str]:
        """Every spec violation of one recorded exchange (request first, then response); empty if it conforms."""
        api = exchange.get("api")
        if api not in API_SPECS:
            return [f"unknown api {api!r} (expected one of {sorted(API_SPECS)})"]
        loaded = self.loaded(str(api))
        method = str(exchange.get("method", "")).lower()
        path = str(exchange.get("path", ""))
        route = loaded.find_route(path)
        if route is None:
            if (api, method.upper(), path) in UNDOCUMENTED_ENDPOINTS:
                return []  # nothing to validate against; the allowance itself is the documented exception
            return [f"request: path {path} is not in the {api} spec"]
        if method not in route.item:
            allowed = ", ".join(m.upper() for m in _METHODS if m in route.item)
            return [f"request: {method.upper()} {path} is not in the {api} spec (path {route.template} has {allowed})"]
        operation = route.item[method]
        op_id = operation.get("operationId", f"{method.upper()} {route.template}")

        request, request_problems = self._mock_request(loaded, exchange)
        violations = [f"request ({op_id}): {p}" for p in request_problems]
        if request is not None:
            violations += [f"request ({op_id}): {m}" for m in self._request_errors(loaded, request)]
        if api == "billbee":
            violations += [f"request ({op_id}): {m}" for m in _unknown_query_keys(exchange, route.item, operation)]
        if request is not None:
            response_errors = self._response_errors(loaded, operation, request, exchange)
            violations += [f"response ({op_id}): {m}" for m in response_errors]
        if len(violations) > MAX_VIOLATIONS:
            violations = violations[:MAX_VIOLATIONS] + [f"... and {len(violations) - MAX_VIOLATIONS} more"]
        return violations

    def check_log(self, path: str | Path) -> dict[str, list[str]]:
        """Violations per exchange of a ``requests.jsonl``, keyed ``"<line>: <api> <METHOD> <path>"``; only exchanges
        with violations appear, so an empty dict means the whole log conforms."""
        result: dict[str, list[str]] = {}
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    exchange = json.loads(line)
                except ValueError as exc:
                    result[f"{number}: <not JSON>"] = [f"line is not JSON: {exc}"]
                    continue
                if not isinstance(exchange, dict):
                    result[f"{number}: <not an object>"] = ["line is not a JSON object"]
                    continue
                violations = self.check(exchange)
                if violations:
                    key = f"{number}: {exchange.get('api')} {exchange.get('method')} {exchange.get('path')}"
                    result[key] = violations
        return result

    # -- request -------------------------------------------------------------------------------------------------
    def _mock_request(self, loaded: _LoadedSpec, exchange: dict[str, Any]) -> tuple[MockRequest | None, list[str]]:
        headers = {str(k).lower(): str(v) for k, v in (exchange.get("request_headers") or {}).items()}
        if headers.get("authorization") == REDACTED and loaded.http_schemes:
            # The sandbox redacts the whole header, scheme included; keep "present" without inventing credentials.
            headers["authorization"] = f"{loaded.http_schemes[0].title()} {REDACTED}"
        content_type = headers.get("content-type", "")
        problems: list[str] = []
        data, content_type, problem = _request_body_bytes(exchange.get("request_body"), content_type)
        if problem:
            problems.append(problem)
            return None, problems
        query = [(str(k), str(v)) for k, v in (exchange.get("query") or [])]
        request = MockRequest(
            loaded.api.host_url,
            str(exchange.get("method", "")).lower(),
            str(exchange.get("path", "")),
            args=ImmutableMultiDict(query),  # keeps repeated keys (shopId=1&shopId=2), which a dict would merge
            headers=headers,
            data=data,
            content_type=content_type or "application/json",
        )
        return request, problems

    def _request_errors(self, loaded: _LoadedSpec, request: MockRequest) -> list[str]:
        out: list[str] = []
        for error in loaded.openapi.iter_request_errors(request):
            out.extend(_describe_openapi_error(error, "body"))
        return out

    # -- response ------------------------------------------------------------------------------------------------
    def _response_errors(
        self, loaded: _LoadedSpec, operation: dict[str, Any], request: MockRequest, exchange: dict[str, Any]
    ) -> list[str]:
        status = exchange.get("status")
        if status is None or exchange.get("fault"):
            return []  # dropped connection or injected fault: the answer is synthetic (module docstring)
        documented = {str(s) for s in operation.get("responses", {})}
        code = str(status)
        headers = {str(k).lower(): str(v) for k, v in (exchange.get("response_headers") or {}).items()}
        if code not in documented and "default" not in documented and f"{code[0]}XX" not in documented:
            if code in ("401", "403"):
                return []  # auth failure the spec does not document (module docstring)
            if code == "429" and loaded.documents_global_429:
                if "retry-after" not in headers:
                    return ["429 without a Retry-After header (the spec's info.description promises one)"]
                return []
            listed = ", ".join(sorted(documented)) or "none"
            return [f"status {code} is not documented (documented: {listed})"]
        body = exchange.get("response_body")
        if loaded.api.api == "sevdesk" and code.startswith("2") and _is_sevdesk_error_envelope(body):
            return _check_sevdesk_error_envelope(body)
        if body is None:
            data = b""
        else:
            data = json.dumps(body).encode()
        content_type = headers.get("content-type") or "application/json"
        response = MockResponse(data, status_code=int(status), headers=headers, content_type=content_type)
        out: list[str] = []
        for error in loaded.openapi.iter_response_errors(request, response):
            if body is None and type(error).__name__ == "MissingData":
                continue  # base.py records non-JSON bodies (PDF bytes) as null: "empty" and "binary" look alike
            out.extend(_describe_openapi_error(error, f"{code} body"))
        return out


def _is_sevdesk_error_envelope(body: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(body, dict) and body.get("error") is not None and body.get("objects") is None


def _check_sevdesk_error_envelope(body: dict[str, Any]) -> list[str]:
    """sevdesk-api.md §1: "Some failures come back as HTTP 200 with an ``error`` object", shaped
    ``{"objects":null,"error":{"message":"…","code":151|null,"exceptionUUID":"…",...}}`` [JRS fixtures]. The
    document describes no such answer, so only the envelope's core is checked."""
    error = body["error"]
    if not isinstance(error, dict):
        return [f"error envelope: 'error' must be an object, got {error!r}"]
    if not isinstance(error.get("message"), str):
        return [f"error envelope: error.message must be a string, got {error.get('message')!r}"]
    return []


def check_log(path: str | Path, specs_dir: Path | str | None = None) -> dict[str, list[str]]:
    """``ContractChecker(specs_dir).check_log(path)`` with every correction applied."""
    return ContractChecker(specs_dir).check_log(path)


# ---------------------------------------------------------------------------------------------------------------
# Request reconstruction
# ---------------------------------------------------------------------------------------------------------------
_BOUNDARY = "contract-check-boundary"


def _request_body_bytes(body: Any, content_type: str) -> tuple[bytes, str, str | None]:
    """The recorded body (see ``_describe_body`` in base.py) as bytes + content type, or a problem to report."""
    if body is None:
        return b"", content_type, None
    mime = content_type.split(";", 1)[0].strip().lower()
    if isinstance(body, dict) and set(body) == {"multipart"}:
        if mime != "multipart/form-data":
            return b"", content_type, f"multipart body sent with Content-Type {content_type!r}"
        return _multipart_bytes(body["multipart"]), f"multipart/form-data; boundary={_BOUNDARY}", None
    if isinstance(body, dict) and set(body) == {"raw"} and isinstance(body["raw"], str):
        # base.py records bodies it could not parse as JSON this way.
        if mime.endswith("json"):
            return b"", content_type, "body declared as JSON is not valid JSON"
        return body["raw"].encode(), content_type, None
    if not content_type:
        return b"", content_type, "request body sent without a Content-Type header"
    return json.dumps(body).encode(), content_type, None


def _multipart_bytes(recorded: dict[str, Any]) -> bytes:
    """A multipart body with the recorded fields and placeholder file contents (base.py keeps only their size)."""
    parts: list[bytes] = []
    for name, value in (recorded.get("fields") or {}).items():
        parts.append(f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, meta in (recorded.get("files") or {}).items():
        size = min(int(meta.get("size") or 0), 64)
        head = (
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{meta.get("filename", "")}"\r\n'
            f"Content-Type: {meta.get('content_type') or 'application/octet-stream'}\r\n\r\n"
        )
        parts.append(head.encode() + b"x" * size + b"\r\n")
    return b"".join(parts) + f"--{_BOUNDARY}--\r\n".encode()


def _unknown_query_keys(exchange: dict[str, Any], item: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    declared = {
        p.get("name")
        for p in [*item.get("parameters", []), *operation.get("parameters", [])]
        if isinstance(p, dict) and p.get("in") == "query"
    }
    out = []
    for key in dict.fromkeys(str(k) for k, _ in (exchange.get("query") or [])):
        if key in declared:
            continue
        base = key.split("[", 1)[0]
        if base in declared:
            out.append(
                f"query key {key!r}: the spec declares {base!r} as repeated keys ({base}=a&{base}=b); the indexed form "
                "is unverified (billbee-pitfalls.md #7)"
            )
        else:
            listed = ", ".join(sorted(str(d) for d in declared)) or "none"
            out.append(f"query key {key!r} is not a parameter of this operation (declared: {listed})")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Error formatting
# ---------------------------------------------------------------------------------------------------------------
def _describe_openapi_error(error: BaseException, body_label: str) -> list[str]:
    """Readable lines for one openapi-core error, one per JSON-schema error where there are several."""
    name = getattr(error, "name", None)
    location = getattr(error, "location", None)
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if name is not None and location is not None:  # a parameter or header error
        label = f"{location} parameter {name!r}"
        if schema_errors:
            return [f"{label}: {m}" for m in _describe_schema_errors(schema_errors, "")]
        if cause is not None and type(cause).__name__ == "CastError":
            return [f"{label}: {getattr(cause, 'value', '?')!r} is not a valid {getattr(cause, 'type', '?')}"]
        return [f"{label}: {cause or error}"]
    if schema_errors:
        return [f"{body_label} {m}" for m in _describe_schema_errors(schema_errors, "")]
    kind = type(error).__name__
    if kind == "SecurityValidationError" or kind == "InvalidSecurity":
        return [f"security: missing credentials the spec requires ({cause or error})"]
    if cause is not None and type(cause).__name__ == "MediaTypeNotFound":
        available = ", ".join(getattr(cause, "availableMimetypes", []) or [])
        mimetype = str(getattr(cause, "mimetype", "?")).split(";", 1)[0]  # drop our synthetic multipart boundary
        return [f"media type {mimetype!r} not documented (documented: {available})"]
    if kind == "ResponseNotFound" or type(cause).__name__ == "ResponseNotFound":
        return [str(cause or error)]
    detail = f": {cause}" if cause is not None else ""
    return [f"{error}{detail}"]


def _path_text(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _flatten(errors: Iterable[SchemaError]) -> Iterator[SchemaError]:
    """Replace an ``anyOf`` failure with the errors of its one real branch when the others only admit null/ids."""
    for error in errors:
        if error.validator in ("anyOf", "oneOf") and error.context:
            real = [e for e in error.context if NULL_MARKER not in (e.schema or {})]
            branches = {e.schema_path[0] for e in real if e.schema_path}
            if len(branches) == 1:
                yield from _flatten(real)
                continue
        yield error


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if len(text) <= limit:
        return text
    suffix = "...}" if isinstance(value, dict) else "...]" if isinstance(value, list) else "..."
    return text[: limit - len(suffix)] + suffix


def _message(error: SchemaError) -> str:
    """jsonschema's message with a long instance (a whole order or position) shortened; the path says where it is."""
    message = str(error.message)
    full = repr(error.instance)
    return message.replace(full, _short_repr(error.instance)) if len(full) > 80 else message


def _describe_schema_errors(errors: Iterable[SchemaError], prefix: str) -> list[str]:
    lines: list[str] = []
    null_paths: set[str] = set()
    flat = list(_flatten(errors))
    for error in flat:
        if error.message == "None for not nullable":
            null_paths.add(_path_text(error.absolute_path))
    for error in flat:
        where = _path_text(error.absolute_path)
        message = _message(error)
        if message == "None for not nullable":
            message = "null is not allowed (not nullable)"
        elif error.instance is None and where in null_paths and message.startswith("None is not of type"):
            continue  # the same null, reported a second time by openapi-schema-validator's type keyword
        elif error.validator in ("anyOf", "oneOf") and error.context:
            options = [_message(e) for e in error.context if NULL_MARKER not in (e.schema or {})]
            message = f"{_short_repr(error.instance)} matches none of: " + " | ".join(dict.fromkeys(options))
        line = f"{prefix}{where}: {message}"
        if line not in lines:
            lines.append(line)
    return lines
