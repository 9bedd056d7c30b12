"""Contract checks: validate recorded sandbox exchanges against the official Billbee and sevDesk API specs.

The sandboxes record every HTTP exchange (``Exchange.as_json()`` in ``local/sandbox/base.py``, one per line in
``requests.jsonl``). ``ContractChecker.check(exchange)`` validates the request and the response of one exchange
against the official OpenAPI documents in ``SPECS_DIR`` (default ``<repo>/../shared/specs``) and returns every
violation as a readable string; ``check_log(path)`` does the same for a whole ``requests.jsonl``.

Both official documents reject traffic the real APIs accept (``shared/specs/ERRATA.md``). The checker therefore
validates against the official document plus ``CORRECTIONS``: exactly the numbered items of ``ERRATA.md`` (sevDesk
1-13, Billbee 1-8), each one function named ``<api>_erratum_<n>_<what>`` that transforms the loaded spec dict and
whose docstring quotes the item. Items that need checker behaviour rather than a schema change express it in the
spec too (Billbee 5 documents 429 per operation; Billbee 8 marks array parameters with ``INDEXED_FORM``, which
``_bind_query`` honours); items that change nothing (Billbee 6 and 7) are registered all the same, so ERRATA.md and
the code map one to one. tests/contract checks that mapping against ERRATA.md, and proves for every correction what
it admits, that a near miss is still reported, and that without it the admitted traffic is reported.

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
  ``includePdf`` on CreateInvoice, billbee-pitfalls.md #15). The indexed array form ``orderStateId[0]=3`` is bound
  like ``orderStateId=3`` when ERRATA Billbee 8 is applied (``_bind_query``). sevDesk is not checked for unknown
  keys: its document omits paging and many filter parameters (sevdesk-pitfalls.md #17), so they would mostly be
  false alarms. Headers the document does not declare (sevDesk's ``X-Version: default``) are not checked either.
- The response is skipped when ``status`` is null (connection dropped / client timed out) or ``fault`` is set (the
  answer is synthetic), and when the request's operation is not in the spec (already reported).
- 401/403 answers are skipped when the operation documents no such status: they come from the sandbox's
  ``authenticate()`` and Billbee's document lists no error status at all.
- Billbee's ``info.description`` documents throttling globally ("the API will return a HTTP 429 status code and a
  Retry-After-Header"), not per operation: without ERRATA Billbee 5 an undocumented 429 is accepted when it carries
  ``Retry-After``; with it, every operation documents 429 with an optional ``Retry-After`` of whole seconds.
  sevDesk documents no 429 anywhere (sevdesk-api.md §1), so an unfaulted 429 from the sevDesk sandbox is reported.
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
from openapi_core.validation.response.exceptions import HeaderValidationError
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
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
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
# Corrections: exactly the numbered items of ERRATA.md, one function each, named <api>_erratum_<n>_<what>.
# The first paragraph of each docstring quotes the item verbatim (tests/contract checks it against ERRATA.md); the
# rest says what the function changes, or why it changes nothing.
# ---------------------------------------------------------------------------------------------------------------
VOUCHER_REQUEST_MODELS = ("Model_Voucher", "Model_VoucherUpdate")
VOUCHER_MODELS = (*VOUCHER_REQUEST_MODELS, "Model_VoucherResponse")
VOUCHER_DATE_FIELDS = ("voucherDate", "deliveryDate", "deliveryDateUntil", "payDate", "paymentDeadline")
# sevDesk request dates (ERRATA sevDesk 3): dd.mm.yyyy, or RFC 3339 with seconds and an offset but no fraction.
SEVDESK_GERMAN_DATE = r"^(0[1-9]|[12][0-9]|3[01])\.(0[1-9]|1[0-2])\.[0-9]{4}$"
SEVDESK_DATE_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})$"
EXTRA_VOUCHER_TAX_RULES = (9, 12, 14, 17, 22)


def _sevdesk_date_schema(original: dict[str, Any]) -> dict[str, Any]:
    branches: list[dict[str, Any]] = [
        {"type": "string", "pattern": SEVDESK_GERMAN_DATE},
        {"type": "string", "format": "date-time", "pattern": SEVDESK_DATE_TIME},
        {"type": "integer", "minimum": 0},
    ]
    if original.get("nullable") is True:
        branches.append(_null_branch())
    replacement: dict[str, Any] = {k: v for k, v in original.items() if k in ("description", "readOnly")}
    replacement["anyOf"] = branches
    return replacement


def sevdesk_erratum_1_save_voucher_requires_voucher_pos_save(spec: Spec) -> None:
    """ERRATA.md sevDesk 1: "`POST /Voucher/Factory/saveVoucher`: schema `saveVoucher` has `required: [voucher,
    voucherPos]` but its property is `voucherPosSave` (clients send `voucherPosSave`; see `../docs/sevdesk-api.md`
    §3)."

    ``saveVoucher.required`` names ``voucherPosSave`` instead of ``voucherPos``.
    """
    schema = _component(spec, "saveVoucher")
    schema["required"] = ["voucherPosSave" if r == "voucherPos" else r for r in schema.get("required", [])]


def sevdesk_erratum_2_voucher_does_not_require_tax_type(spec: Spec) -> None:
    """ERRATA.md sevDesk 2: "`Model_Voucher` requires `taxType`, a bookkeeping-1.0 field; 2.0 accounts use `taxRule`,
    and `taxType` should not be sent (`../docs/sevdesk-api.md` §4)."

    ``Model_Voucher`` no longer requires ``taxType``; ``taxRule`` stays required, as the document has it.
    """
    schema = _component(spec, "Model_Voucher")
    schema["required"] = [r for r in schema.get("required", []) if r != "taxType"]


def sevdesk_erratum_3_voucher_dates_german_rfc3339_or_timestamp(spec: Spec) -> None:
    """ERRATA.md sevDesk 3: "Date fields are declared `format: date-time` but described as "timestamp or
    dd.mm.yyyy": `voucherDate`, `deliveryDate`, `deliveryDateUntil`, `payDate`, `paymentDeadline` on vouchers, and the
    `date` of `PUT /Voucher/{id}/bookAmount`. Working clients send `dd.mm.yyyy` (jernoxit/sevdesk-rs, recorded live;
    Nerdscave WHMCS module) or an RFC 3339 time **without fractional seconds** (sevdesk-rs bookings, numtide
    freelancer-toolbox). No public client sends fractions; treat them as unproven. A `dd.mm.yyyy` date comes back as
    Berlin midnight."

    In the voucher request models (``Model_Voucher``, ``Model_VoucherUpdate``) those five fields, and the ``date`` of
    the bookAmount request body, accept exactly: ``dd.mm.yyyy`` (``SEVDESK_GERMAN_DATE``), an RFC 3339 date-time
    with seconds, an offset and no fraction (``SEVDESK_DATE_TIME``, e.g. ``2026-10-01T12:00:00+02:00``), or a Unix
    timestamp as a JSON integer. Fractional seconds (``...12:00:00.5+02:00``) are rejected although the declared
    ``date-time`` admits them, and so are other shapes (``2026-10-01``, ``1.10.2026``, ``"1790709544"``). A field
    the document declares nullable stays nullable. Responses keep the declared ``date-time``: sevDesk answers with
    RFC 3339 (Berlin midnight for a ``dd.mm.yyyy`` date).
    """
    for model in VOUCHER_REQUEST_MODELS:
        props = _component(spec, model)["properties"]
        for name in VOUCHER_DATE_FIELDS:
            if name in props:
                props[name] = _sevdesk_date_schema(props[name])
    book = spec["paths"]["/Voucher/{voucherId}/bookAmount"]["put"]["requestBody"]["content"]["application/json"]
    props = book["schema"]["properties"]
    props["date"] = _sevdesk_date_schema(props["date"])


def sevdesk_erratum_4_reference_ids_accept_strings_or_integers(spec: Spec) -> None:
    """ERRATA.md sevDesk 4: "Ids in references (`taxRule.id`, `accountDatev.id`, `checkAccount.id`) come back as
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
    """ERRATA.md sevDesk 5: "Responses are wrapped in `{"objects": ...}`; several response schemas omit the wrapper
    (`sevdesk-openapi.community-patched.yaml` corrects many of these)."

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


def sevdesk_erratum_6_upload_temp_file_is_multipart(spec: Spec) -> None:
    """ERRATA.md sevDesk 6: "`POST /Voucher/Factory/uploadTempFile` declares the media type `form-data`; the real
    request is `multipart/form-data` with the field `file`, answered with the temporary name at `objects.filename`
    (`sevdesk-examples/sevdesk-rs_write_upload_temp_file.json`)."

    The request media type ``form-data`` becomes ``multipart/form-data`` with ``file`` required (a JSON upload or a
    multipart body without ``file`` is reported), and the 201 answer requires ``objects.filename``.
    """
    operation = spec["paths"]["/Voucher/Factory/uploadTempFile"]["post"]
    content = operation["requestBody"]["content"]
    if "form-data" in content:
        content["multipart/form-data"] = content.pop("form-data")
    schema = content["multipart/form-data"]["schema"]
    schema["required"] = sorted({*schema.get("required", []), "file"})
    answer = _resolve(spec, operation["responses"]["201"]["content"]["application/json"]["schema"])
    objects = _resolve(spec, answer["properties"]["objects"])
    objects["required"] = sorted({*objects.get("required", []), "filename"})


def sevdesk_erratum_7_voucher_pos_uses_2_0_fields(spec: Spec) -> None:
    """ERRATA.md sevDesk 7: "`Model_VoucherPos` requires `accountingType` and both sums; bookkeeping 2.0 positions
    carry `accountDatev` instead of `accountingType`, and one of `sumNet` / `sumGross` according to `net`
    (`sevdesk-examples/sevdesk-rs_write_voucher_save_create.json`)."

    ``Model_VoucherPos`` (request) no longer requires ``accountingType`` nor both sums; instead ``net: false``
    requires ``sumGross`` and ``net: true`` requires ``sumNet`` (``accountDatev`` and ``net`` stay required, as
    declared). ``Model_VoucherPosResponse`` no longer requires ``accountingType`` (the recorded answers have positions
    without it); answers carry both sums, as declared.
    """
    request = _component(spec, "Model_VoucherPos")
    request["required"] = [r for r in request.get("required", []) if r not in ("accountingType", "sumNet", "sumGross")]
    request["anyOf"] = [
        {"properties": {"net": {"enum": [False]}}, "required": ["net", "sumGross"]},
        {"properties": {"net": {"enum": [True]}}, "required": ["net", "sumNet"]},
    ]
    response = _component(spec, "Model_VoucherPosResponse")
    response["required"] = [r for r in response.get("required", []) if r != "accountingType"]


def sevdesk_erratum_8_voucher_tax_rule_enum_incomplete(spec: Spec) -> None:
    """ERRATA.md sevDesk 8: "The enum of `taxRule.id` on vouchers (`1,2,3,4,5,11`) is incomplete: vouchers with rules
    9, 12, 14, 17 and 22 are accepted (sevdesk-rs fixture has rule 14; Stripe-SevDesk-Sync 17; WHMCS module 22)."

    The ``taxRule.id`` enum of the voucher models (``Model_Voucher``, ``Model_VoucherUpdate``,
    ``Model_VoucherResponse``) gains 9, 12, 14, 17 and 22, in the string and (after erratum 4) the integer form. Any
    other rule (e.g. 18, invoice-only) is still reported; invoices, orders and credit notes keep their own enums.
    """
    for model in VOUCHER_MODELS:
        id_schema = _component(spec, model)["properties"]["taxRule"]["properties"]["id"]
        for node in _walk_dicts(id_schema):
            enum = node.get("enum")
            if enum is None or NULL_MARKER in node:  # the null branch's [null] is not a tax-rule list
                continue
            as_integer = node.get("type") == "integer"
            rules = {int(v) for v in enum if v is not None} | set(EXTRA_VOUCHER_TAX_RULES)
            values: list[Any] = [r if as_integer else str(r) for r in sorted(rules)]
            node["enum"] = values + ([None] if None in enum else [])


def sevdesk_erratum_9_voucher_status_150_750(spec: Spec) -> None:
    """ERRATA.md sevDesk 9: "Voucher `status` in responses also takes 150 and 750 (partially paid), which the schema
    enum lacks; the text lists them."

    Adds ``"150"`` and ``"750"`` to the status enum of ``Model_VoucherResponse``; requests stay limited to the
    declared 50/100/1000.
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
_SCALAR_TYPES = ("string", "number", "integer", "boolean")


def _also_as_string(schema: dict[str, Any]) -> dict[str, Any]:
    """A declared boolean/integer/number that also accepts its string form (``"1"``, ``"123"``, ``"87.49"``)."""
    as_string = _SCALAR_STRINGS.get(str(schema.get("type")))
    if as_string is None or "$ref" in schema:
        return schema
    original = {k: v for k, v in schema.items() if k not in ("nullable", "description", "readOnly")}
    branches = [original, dict(as_string)]
    if schema.get("nullable") is True:
        branches.append(_null_branch())
    replacement: dict[str, Any] = {k: v for k, v in schema.items() if k in ("description", "readOnly")}
    replacement["anyOf"] = branches
    return replacement


def _also_json_number_or_boolean(schema: dict[str, Any]) -> dict[str, Any]:
    """A scalar (as declared, or as widened by ``_also_as_string``) that also accepts a JSON number and boolean."""
    if "anyOf" in schema and all("$ref" not in b for b in schema["anyOf"]):
        branches = list(schema["anyOf"])
        kept = {k: v for k, v in schema.items() if k != "anyOf"}
    elif schema.get("type") in _SCALAR_TYPES and "format" not in schema and "enum" not in schema:
        branches = [{k: v for k, v in schema.items() if k not in ("nullable", "description", "readOnly")}]
        if schema.get("nullable") is True:
            branches.append(_null_branch())
        kept = {k: v for k, v in schema.items() if k in ("description", "readOnly")}
    else:
        return schema
    present = {b.get("type") for b in branches}
    branches += [{"type": t} for t in ("number", "boolean") if t not in present]
    return {**kept, "anyOf": branches}


def sevdesk_erratum_10_response_scalars_are_strings(spec: Spec) -> None:
    """ERRATA.md sevDesk 10: "Scalars in responses come back as strings (`"id":"123"`, `"status":"1000"`,
    `"net":"0"`), although the schema declares integers, numbers and booleans; requests must still send real JSON
    numbers and booleans. Exceptions seen live: `paidAmount` is a number; `saveInvoice` answers carry real numbers
    and booleans in positions."

    In the success data of answers (``_response_data_roots``; request schemas stay strict) every property declared
    boolean, integer or number also accepts its string form (``"0"``/``"1"``/``"true"``/``"false"``, digits,
    decimals), except ``paidAmount``, which stays a JSON number. The positions of ``saveInvoice`` answers
    (``saveInvoiceResponse.invoicePos``, given their own copy of ``Model_InvoicePosResponse`` so that
    ``GET /InvoicePos`` keeps the string rule) additionally accept a JSON number or boolean in every scalar property
    without a format; everywhere else a declared string (e.g. ``VoucherPos.sumNet``) must stay a string.
    """
    invoice_pos = _component(spec, "saveInvoiceResponse")["properties"]["invoicePos"]
    positions = copy.deepcopy(_resolve(spec, invoice_pos["items"]))
    invoice_pos["items"] = positions
    for root in _response_data_roots(spec):
        for props in _property_maps(root):
            for name, schema in list(props.items()):
                if name != "paidAmount":
                    props[name] = _also_as_string(schema)
    for name, schema in list(positions["properties"].items()):
        positions["properties"][name] = _also_json_number_or_boolean(schema)


def sevdesk_erratum_11_response_properties_nullable(spec: Spec) -> None:
    """ERRATA.md sevDesk 11: "Many response properties arrive as `null` although the schema does not allow it
    (`surename`, `familyname`, `enshrined`, `recurringInterval`, ...; `sevdesk-examples/`)."

    Every property of the success data (``_response_data_roots``) accepts null (an enum such as
    ``recurringInterval`` gets ``null`` added); the ``objects`` envelope itself does not, and request schemas stay as
    declared.
    """
    for root in _response_data_roots(spec):
        for props in _property_maps(root):
            for name, schema in list(props.items()):
                props[name] = _make_nullable(schema)


STATIC_COUNTRY_PATH = "/StaticCountry"


def sevdesk_erratum_12_static_country_by_code(spec: Spec) -> None:
    """ERRATA.md sevDesk 12: "`GET /StaticCountry?code=XX` exists and filters by ISO code, but is not in the document;
    for `GB` it returns more than one row (England, Great Britain, United Kingdom)."

    Adds ``GET /StaticCountry`` (operation ``getStaticCountries``) with the document's usual token security, the
    optional query parameter ``code`` (two letters, either case) and a 200 answer ``{"objects": [country, ...]}``: a
    list of any length (``GB`` has several rows), each row ``{"id": "<digits>", "objectName": "StaticCountry"}`` plus
    the string fields of ``Model_StaticCountryResponse`` in ``sevdesk-openapi.community-patched.yaml`` (``code``,
    ``name``, ``nameEn``, ``translationCode``, ``locale``, ``priority``), each nullable. Other methods and
    ``/StaticCountry/{id}`` stay unknown.
    """
    text: dict[str, Any] = {"type": "string", "nullable": True}
    country: dict[str, Any] = {
        "type": "object",
        "required": ["id", "objectName"],
        "properties": {
            "id": {"type": "string", "pattern": r"^[0-9]+$"},
            "objectName": {"type": "string", "enum": ["StaticCountry"]},
            "code": dict(text),
            "name": dict(text),
            "nameEn": dict(text),
            "translationCode": dict(text),
            "locale": dict(text),
            "priority": {"type": "string", "pattern": r"^[0-9]+$", "nullable": True},
            "additionalInformation": dict(text),
        },
    }
    security = spec["paths"]["/Tools/bookkeepingSystemVersion"]["get"].get("security", [{"api_key": []}])
    spec["paths"][STATIC_COUNTRY_PATH] = {
        "get": {
            "operationId": "getStaticCountries",
            "summary": "Countries for contact addresses (ERRATA.md sevDesk 12)",
            "parameters": [
                {
                    "name": "code",
                    "in": "query",
                    "required": False,
                    "description": "ISO 3166-1 alpha-2 code; sevDesk's rows are lower case",
                    "schema": {"type": "string", "pattern": r"^[A-Za-z]{2}$"},
                }
            ],
            "responses": {
                "200": {
                    "description": "The matching countries",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["objects"],
                                "properties": {"objects": {"type": "array", "items": country}},
                            }
                        }
                    },
                },
                "401": {"description": "Authentication required"},
            },
            "security": copy.deepcopy(security),
        }
    }


def sevdesk_erratum_13_get_voucher_is_a_list_of_one(spec: Spec) -> None:
    """ERRATA.md sevDesk 13: "`GET /Voucher/{id}` answers `objects` as a list of one voucher, `POST`/`PUT` answers as
    a single object."

    The document already declares ``GET /Voucher/{voucherId}`` as a list and the voucher ``POST``/``PUT`` answers as
    one object (wrapped by erratum 5), so nothing is widened. The correction narrows the by-id ``GET`` to exactly one
    voucher (``minItems``/``maxItems`` 1): an empty list or several vouchers for one id are reported.
    """
    media = spec["paths"]["/Voucher/{voucherId}"]["get"]["responses"]["200"]["content"]["application/json"]
    objects = _resolve(spec, media["schema"])["properties"]["objects"]
    objects["minItems"] = 1
    objects["maxItems"] = 1


def billbee_erratum_1_every_property_nullable(spec: Spec) -> None:
    """ERRATA.md Billbee 1: "Swagger 2.0 has no `nullable`; real responses carry `null` in many properties
    (`ErrorMessage`, `Id`, `OrderNumber`, `PayedAt`, `Buyer`, `Seller.BillbeeShopId`, ...:
    `billbee-examples/ithoc-mock_real_orders_page_redacted.json`). Treat every property as nullable."

    Every property of every schema accepts null (an enum gets ``null`` added; a ``$ref`` gets a null branch).
    """
    for props in _property_maps(spec):
        for name, schema in list(props.items()):
            props[name] = _make_nullable(schema)


def billbee_erratum_2_error_description_string_or_int(spec: Spec) -> None:
    """ERRATA.md Billbee 2: "`ErrorDescription` is declared an integer enum; real responses carry the name as a string
    (`"NoError"`)."

    Every ``ErrorDescription`` accepts the declared integer enum or a string.
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
    """ERRATA.md Billbee 3: "`OrderItem.ShippingProfileId` is declared a string; Billbee's own PHP SDK fixture
    (`billbee-examples/php-sdk_get_orders_response.json`) has an integer."

    The cited fixture has the integer on the *order* (``Data[0].ShippingProfileId: 12345``; its order item has no
    ``ShippingProfileId``), and both ``Order`` and ``OrderItem`` declare the property a string, so both accept a
    string or an integer.
    """
    for model in ("Billbee.Interfaces.BillbeeAPI.Model.Order", "Billbee.Interfaces.BillbeeAPI.Model.OrderItem"):
        props = _component(spec, model)["properties"]
        branches: list[dict[str, Any]] = [{"type": "string"}, {"type": "integer"}]
        if props["ShippingProfileId"].get("nullable") is True:  # erratum 1 ran first
            branches.append(_null_branch())
        props["ShippingProfileId"] = {"anyOf": branches}


# A Billbee timestamp without offset: seconds, then 0-3 fraction digits (ERRATA Billbee 4).
BILLBEE_NAIVE_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?$"


def billbee_erratum_4_naive_timestamps(spec: Spec) -> None:
    """ERRATA.md Billbee 4: "Timestamps come without an offset (`2023-04-29T13:22:18.797`, 0-3 fractional digits),
    where the document says `date-time`; treat them as Billbee's local time (Europe/Berlin) unless proven otherwise."

    Every ``format: date-time`` of the document, in answers and in query parameters (``minOrderDate``,
    ``modifiedAtMin``, ``minInvoiceDate``, ...; the connector sends them in the same local form), accepts the declared
    RFC 3339 date-time or ``BILLBEE_NAIVE_TIMESTAMP``: ``yyyy-mm-ddThh:mm:ss`` with 0-3 fraction digits and no offset.
    Other shapes (``22.04.2023``, a naive value with 4+ fraction digits or without seconds, ``2023-04-29 13:22``) are
    still reported. The time zone is the client's concern; a pattern cannot check it.
    """
    for node in _walk_dicts(spec):
        if node.get("type") == "string" and node.get("format") == "date-time":
            node.pop("format")
            node["anyOf"] = [{"format": "date-time"}, {"pattern": BILLBEE_NAIVE_TIMESTAMP}]


RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "seconds to wait (info.description); sometimes missing (ERRATA.md Billbee 5)",
    "required": False,
    "schema": {"type": "integer", "minimum": 0},
}


def billbee_erratum_5_429_without_retry_after(spec: Spec) -> None:
    """ERRATA.md Billbee 5: "The document promises `Retry-After` on 429; a user of Billbee's own PHP SDK reports 429
    answers without it (billbeeio/billbee-php-sdk issue #82, 2024, open). A client must cope with both; the
    per-resource windows the document names are the fallback (`GET /orders/{id}` 6 per minute per order,
    `CreateInvoice` 1 per 5 minutes per order, `GET /orders/invoices` 1 per minute per page and `minInvoiceDate`)."

    The document's throttling is global prose in ``info.description`` ("a HTTP 429 status code and a
    Retry-After-Header indicating how many seconds"), which the checker enforces on its own: a 429 needs
    ``Retry-After``. This correction documents 429 on every operation with an *optional* ``Retry-After`` header of
    whole seconds, so a 429 without the header conforms, and one with a header that is not a number of seconds
    (``Retry-After: soon``) is reported. The fallback windows are client behaviour, not a contract to check. sevDesk
    documents no 429 and stays unaffected.
    """
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method in _METHODS and isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault(
                    "429",
                    {
                        "description": "Throttled (info.description, ERRATA.md Billbee 5)",
                        "headers": {"Retry-After": copy.deepcopy(RETRY_AFTER_HEADER)},
                    },
                )


def billbee_erratum_6_invoice_totals_with_or_without_fees(spec: Spec) -> None:
    """ERRATA.md Billbee 6: "`GET /orders/invoices`: in Billbee's own SDK fixture
    (`billbee-examples/php-sdk_get_invoices_response.json`) `TotalGross`/`TotalNet` **leave out** `AdditionalFees`
    (158.76 = the positions; the ShipCost fee of 11.996 gross is extra; the same order's `TotalCost` and
    `CreateInvoice` `TotalGross` are 170.76). Do not rely on either reading: accept totals with or without the fees,
    and cross-check positions + fees against the order's `TotalCost`."

    Changes nothing: the document declares ``TotalGross``/``TotalNet`` as plain numbers and says nothing about what
    they sum, so totals with and without the fees already conform (their types are still checked). The cross-check
    against ``TotalCost`` spans two calls and is the connector's job, not a schema's. Registered so that every
    ERRATA item maps to exactly one correction.
    """


def billbee_erratum_7_null_lists(spec: Spec) -> None:
    """ERRATA.md Billbee 7: "Lists may arrive as `null` (`ShippingServices: null` in the real page
    `ithoc-mock_real_orders_page_redacted.json`); erratum 1 covers the schema, and a client must read a `null` list
    as empty."

    Changes nothing: ``billbee_erratum_1_every_property_nullable`` already makes every list property nullable (as
    the item itself says); reading ``null`` as empty is the client's job. Registered so that every ERRATA item maps
    to exactly one correction.
    """


# Set by billbee_erratum_8 on the query parameters whose indexed form (name[0]=a&name[1]=b) is admitted.
INDEXED_FORM = "x-contract-indexed-form"


def billbee_erratum_8_indexed_array_query_keys(spec: Spec) -> None:
    """ERRATA.md Billbee 8: "Array query parameters are `collectionFormat: multi` (`orderStateId=3&orderStateId=4`)
    in the document; Billbee's official C# and PHP SDKs send indexed keys (`orderStateId[0]=3&orderStateId[1]=4`).
    Which forms the live API binds is not recorded anywhere public; the SDKs' form is the one with the most live
    use."

    Marks every array query parameter (``shopId``, ``orderStateId``, ``tag``, ``typeId``) with ``INDEXED_FORM``; the
    checker then binds ``name[0]=a&name[1]=b`` like ``name=a&name=b`` (``_bind_query``), so each value is still
    validated against the item schema (``orderStateId[0]=shipped`` is reported). Still reported: indexes that do not
    count 0, 1, 2, ... as the SDKs send them (``[1]`` alone, ``[]``, ``[x]``, ``[01]``), both forms for one
    parameter, an index on a non-array parameter (``page[0]``) and unknown names. The recorded query pairs are
    decoded, so ``orderStateId%5B0%5D=3`` on the wire arrives as ``orderStateId[0]``; a key still holding ``%5B``
    was encoded twice and is reported. The multi form stays valid.
    """
    for item in spec.get("paths", {}).values():
        operations = [op for method, op in item.items() if method in _METHODS and isinstance(op, dict)]
        for holder in (item, *operations):
            for parameter in holder.get("parameters", []):
                schema = parameter.get("schema", {}) if isinstance(parameter, dict) else {}
                if parameter.get("in") == "query" and schema.get("type") == "array":
                    parameter[INDEXED_FORM] = True


@dataclass(frozen=True)
class Correction:
    name: str  # "<api>_erratum_<n>": the ERRATA.md item it implements
    api: Literal["sevdesk", "billbee"]
    number: int
    apply: Callable[[Spec], None]

    @property
    def source(self) -> str:
        return f"ERRATA.md {'sevDesk' if self.api == 'sevdesk' else 'Billbee'} {self.number}"


def _correction(apply: Callable[[Spec], None]) -> Correction:
    match = re.fullmatch(r"(?P<name>(?P<api>sevdesk|billbee)_erratum_(?P<number>[0-9]+))_\w+", apply.__name__)
    if match is None:
        raise ValueError(f"{apply.__name__}: a correction is named <api>_erratum_<n>_<what>")
    api: Literal["sevdesk", "billbee"] = "sevdesk" if match["api"] == "sevdesk" else "billbee"
    return Correction(match["name"], api, int(match["number"]), apply)


# Applied in this order (erratum 1 before the Billbee corrections that keep nullability, sevDesk 4 before 8).
CORRECTIONS: tuple[Correction, ...] = tuple(
    _correction(apply)
    for apply in (
        sevdesk_erratum_1_save_voucher_requires_voucher_pos_save,
        sevdesk_erratum_2_voucher_does_not_require_tax_type,
        sevdesk_erratum_3_voucher_dates_german_rfc3339_or_timestamp,
        sevdesk_erratum_4_reference_ids_accept_strings_or_integers,
        sevdesk_erratum_5_responses_wrapped_in_objects,
        sevdesk_erratum_6_upload_temp_file_is_multipart,
        sevdesk_erratum_7_voucher_pos_uses_2_0_fields,
        sevdesk_erratum_8_voucher_tax_rule_enum_incomplete,
        sevdesk_erratum_9_voucher_status_150_750,
        sevdesk_erratum_10_response_scalars_are_strings,
        sevdesk_erratum_11_response_properties_nullable,
        sevdesk_erratum_12_static_country_by_code,
        sevdesk_erratum_13_get_voucher_is_a_list_of_one,
        billbee_erratum_1_every_property_nullable,
        billbee_erratum_2_error_description_string_or_int,
        billbee_erratum_3_shipping_profile_id_string_or_int,
        billbee_erratum_4_naive_timestamps,
        billbee_erratum_5_429_without_retry_after,
        billbee_erratum_6_invoice_totals_with_or_without_fees,
        billbee_erratum_7_null_lists,
        billbee_erratum_8_indexed_array_query_keys,
    )
)
CORRECTIONS_BY_NAME: dict[str, Correction] = {c.name: c for c in CORRECTIONS}


def corrected_spec(api: str, specs_dir: Path, corrections: Iterable[str]) -> Spec:
    """A deep copy of the official document of ``api`` with the named corrections applied in registry order."""
    spec = copy.deepcopy(_load_raw_spec(str(specs_dir / API_SPECS[api].file)))
    wanted = set(corrections)
    for correction in CORRECTIONS:
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
class ContractChecker:
    """Checks recorded exchanges against the official specs plus the corrections named in ``corrections``.

    ``corrections=None`` applies every correction (one per ERRATA.md item, ``CORRECTIONS``); pass a subset (e.g.
    ``()`` for the raw documents) to see what a correction changes.
    """

    def __init__(self, specs_dir: Path | str | None = None, *, corrections: Iterable[str] | None = None) -> None:
        self.specs_dir = Path(specs_dir) if specs_dir is not None else default_specs_dir()
        names = [c.name for c in CORRECTIONS] if corrections is None else list(corrections)
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
            return [f"request: path {path} is not in the {api} spec"]
        if method not in route.item:
            allowed = ", ".join(m.upper() for m in _METHODS if m in route.item)
            return [f"request: {method.upper()} {path} is not in the {api} spec (path {route.template} has {allowed})"]
        operation = route.item[method]
        op_id = operation.get("operationId", f"{method.upper()} {route.template}")

        query, query_problems = _bind_query(str(api), exchange, route.item, operation)
        request, request_problems = self._mock_request(loaded, exchange, query)
        violations = [f"request ({op_id}): {p}" for p in request_problems]
        if request is not None:
            violations += [f"request ({op_id}): {m}" for m in self._request_errors(loaded, request)]
        violations += [f"request ({op_id}): {m}" for m in query_problems]
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
    def _mock_request(
        self, loaded: _LoadedSpec, exchange: dict[str, Any], query: list[tuple[str, str]]
    ) -> tuple[MockRequest | None, list[str]]:
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


_INDEXED_KEY = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<index>[^\]]*)\]$")


def _bind_query(
    api: str, exchange: dict[str, Any], item: dict[str, Any], operation: dict[str, Any]
) -> tuple[list[tuple[str, str]], list[str]]:
    """The recorded query pairs as openapi-core should see them, and the problems with their keys.

    sevDesk: unchanged, no key checks (module docstring). Billbee: every key must be a parameter of the operation;
    ``name[i]`` keys of a parameter marked ``INDEXED_FORM`` (ERRATA Billbee 8) are bound as ``name`` so that each
    value is validated, provided the indexes count 0, 1, 2, ... and the parameter is not also sent as ``name=``.
    """
    pairs = [(str(k), str(v)) for k, v in (exchange.get("query") or [])]
    if api != "billbee":
        return pairs, []
    declared = {
        str(p.get("name")): p
        for p in [*item.get("parameters", []), *operation.get("parameters", [])]
        if isinstance(p, dict) and p.get("in") == "query"
    }
    bound: list[tuple[str, str]] = []
    problems: list[str] = []
    indexes: dict[str, list[str]] = {}
    for key, value in pairs:
        match = _INDEXED_KEY.match(key)
        if key in declared or match is None:
            bound.append((key, value))
            continue
        base = match["base"]
        parameter = declared.get(base)
        if parameter is not None and parameter.get(INDEXED_FORM):
            indexes.setdefault(base, []).append(match["index"])
            bound.append((base, value))
        else:
            bound.append((key, value))  # reported below; openapi-core ignores unknown keys
    for key in dict.fromkeys(k for k, _ in bound):
        if key in declared:
            continue
        match = _INDEXED_KEY.match(key)
        parameter = declared.get(match["base"]) if match else None
        if match is not None and parameter is not None:
            base = match["base"]
            if parameter.get("schema", {}).get("type") != "array":
                problems.append(f"query key {key!r}: {base!r} is not an array parameter")
            else:
                problems.append(
                    f"query key {key!r}: the spec declares {base!r} as repeated keys ({base}=a&{base}=b); the indexed "
                    f"form {base}[0]=a&{base}[1]=b needs ERRATA Billbee 8"
                )
        else:
            listed = ", ".join(sorted(declared)) or "none"
            problems.append(f"query key {key!r} is not a parameter of this operation (declared: {listed})")
    for base, seen in indexes.items():
        expected = [str(i) for i in range(len(seen))]
        if sorted(seen, key=lambda s: (len(s), s)) != expected:
            keys = ", ".join(f"{base}[{i}]" for i in seen)
            problems.append(
                f"query keys {keys}: the indexed form counts {base}[0], {base}[1], ... without gaps (ERRATA Billbee 8)"
            )
        if any(k == base for k, _ in pairs):
            problems.append(
                f"query parameter {base!r} is sent both as {base}= and as {base}[i]=; the SDKs send one form only"
            )
    return bound, problems


# ---------------------------------------------------------------------------------------------------------------
# Error formatting
# ---------------------------------------------------------------------------------------------------------------
def _describe_openapi_error(error: BaseException, body_label: str) -> list[str]:
    """Readable lines for one openapi-core error, one per JSON-schema error where there are several."""
    name = getattr(error, "name", None)
    location = getattr(error, "location", None)
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if name is not None and (location is not None or isinstance(error, HeaderValidationError)):
        label = f"{location} parameter {name!r}" if location is not None else f"response header {name!r}"
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
