"""What the local commands read from the user (an orders file, a connection file, a fault spec), checked with a clear
message for each mistake: ``python -m local.run`` and ``python -m local.serve`` answer bad input with that message and
a non-zero exit, never a traceback, and never print a value from the connection file (it may hold credentials)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """A mistake in what the user gave; the message says what and how to fix it."""


def read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BadInput(f"{what} {path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{what} {path}: cannot be read ({type(exc).__name__})") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{what} {path}: not valid JSON ({exc})") from exc


def load_orders(path: Path) -> list[dict[str, Any]]:
    """A JSON array of Billbee orders (``Data`` of ``GET /orders``), or a whole ``GET /orders`` answer."""
    data = read_json(path, "orders file")
    if isinstance(data, dict) and "Data" in data:
        data = data["Data"]
    if isinstance(data, dict):
        hint = " (this looks like one order, e.g. the Data of GET /orders/{id}: put it in [ ])" if (
            "BillBeeOrderId" in data) else ""
        raise BadInput(f"orders file {path}: expected a JSON array of Billbee orders{hint}")
    if not isinstance(data, list):
        raise BadInput(f"orders file {path}: expected a JSON array of Billbee orders, not {type(data).__name__}")
    if not data:
        raise BadInput(f"orders file {path}: the array is empty")
    not_objects = [i for i, order in enumerate(data) if not isinstance(order, dict)]
    if not_objects:
        raise BadInput(f"orders file {path}: item(s) {not_objects[:5]} are not JSON objects (Billbee orders)")
    return data


def settings_problems(error: ValidationError) -> list[str]:
    """Each invalid field of a connection with what is wrong, never its value (credentials are in there)."""
    return [
        f"{'.'.join(str(p) for p in item.get('loc') or ()) or 'the connection'}: "
        f"{str(item.get('msg') or 'invalid').removeprefix('Value error, ')}"
        for item in error.errors(include_url=False, include_input=False)
    ]


def load_connection(path: Path) -> dict[str, Any]:
    """The connection body, checked against the settings model (credentials may be left out: the local stack has its
    own sandbox credentials)."""
    from connector.settings.model import ConnectionSettings

    body = read_json(path, "connection file")
    if not isinstance(body, dict):
        raise BadInput(f"connection file {path}: expected a JSON object (the body of PUT /connections/{{id}})")
    try:
        ConnectionSettings.model_validate({"credentials": None, **body})
    except ValidationError as exc:
        problems = "\n  ".join(settings_problems(exc))
        raise BadInput(f"connection file {path} has errors:\n  {problems}") from None
    return body


def check_fault_operations(rules: list[Any], operations: dict[str, set[str]]) -> None:
    """Every rule of ``--faults`` names an operation the sandbox serves (a typo would silently fault nothing)."""
    for rule in rules:
        if rule.operation == "*":
            continue
        apis = operations if rule.api == "*" else {rule.api: operations.get(rule.api, set())}
        if not any(rule.operation in ops for ops in apis.values()):
            known = ", ".join(sorted(set().union(*apis.values())))
            raise BadInput(f"--faults: {rule.api} has no operation {rule.operation!r}; known: {known}")


EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70


def read_only_main(run: Callable[[], int], log: Path) -> int:
    """A read-only command's outcome as its exit status: bad input (2) and interruption (130) as one line, and a bug
    as one line with secrets masked (70), pointing at ``log`` for the details. Nothing was written to Billbee or
    sevDesk in any case."""
    try:
        return run()
    except BadInput as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted; nothing was written to Billbee or sevDesk", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line, secrets masked
        from connector.observability import redacted

        print(redacted(f"internal error: {type(exc).__name__}: {exc} (see {log})"), file=sys.stderr)
        return EXIT_INTERNAL

