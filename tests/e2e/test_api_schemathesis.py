"""Property-based run of schemathesis against the served /openapi.json, over real HTTP on the local stack.

Schemathesis generates valid and invalid requests for every operation of the document the API serves about itself
and checks each answer: never a 5xx, every status code and content type documented, every body matching its schema,
invalid input refused with a 4xx, and no data without the bearer token. Bounded by ``MAX_EXAMPLES`` per operation and
mode so the file runs in well under 90 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_operations import OPERATIONS
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from local.sample_shop import sample_orders
from local.serve import api_token, serve_stack
from local.stack import LocalStack

REPO = Path(__file__).resolve().parents[2]
CONNECTION = json.loads((REPO / "local" / "sample_connection.json").read_text())
MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


class Served:
    def __init__(self, url: str, token: str, exported: int, skipped: int) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.exported = exported  # an order with an EXPORTED record
        self.skipped = skipped  # an order with a SKIPPED record (no invoice)


def known_path_parameters(path: str, method: str, mode: GenerationMode, served: Served) -> list[dict[str, Any]]:
    if "{connectionId}" not in path or method == "DELETE":  # deleting the connection would end the run's coverage
        return []
    if mode is GenerationMode.NEGATIVE and method == "GET" and not path.endswith("/orders"):
        return []  # nothing but the path to make invalid: fixing the path leaves nothing to negate
    if mode is GenerationMode.NEGATIVE and path.endswith("/retry"):
        return []
    connection = CONNECTION["connectionId"]
    if "{orderId}" in path:
        return [{"connectionId": connection, "orderId": served.exported},
                {"connectionId": connection, "orderId": served.skipped}]
    return [{"connectionId": connection}]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    orders = sample_orders()
    few = orders[:3] + [o for o in orders if not o.get("InvoiceNumber")]  # enough for records of both kinds
    with LocalStack(orders=few, billbee_rate_limits=False) as stack:
        stack.save_connection(CONNECTION)
        stack.poll()  # some export records to read back
        stack.drain()
        records = stack.records(CONNECTION["connectionId"])
        exported = next(r.order_id for r in records if r.state.value == "EXPORTED")
        skipped = next(r.order_id for r in records if r.state.value == "SKIPPED")
        with serve_stack(stack) as server:
            yield Served(server.url, api_token(stack), exported, skipped)


@pytest.fixture(scope="module")
def api_schema(served: Served) -> Any:
    """The document exactly as the API serves it (fetched with the token, like any client)."""
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json", headers=served.headers)




def test_the_served_document_has_exactly_these_operations(api_schema: Any) -> None:
    served = {(op.method.upper(), op.path) for op in (r.ok() for r in api_schema.get_all_operations())}
    assert served == set(OPERATIONS)


# schemathesis' own pytest plugin does not run under pytest 9 (it sets Function._nodeid), so each operation's
# strategy is driven with hypothesis directly: the same generation and the same checks.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_request_gets_a_server_error_or_an_answer_outside_the_schema(
    api_schema: Any, served: Served, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    # Random ids almost never name the stored connection or a recorded order, so answers past the 404 would go
    # unchecked: half of the cases use real ones (and schemathesis varies the rest of the request).
    variants = [operation.as_strategy(generation_mode=mode)]
    for fixed in known_path_parameters(path, method, mode, served):
        variants.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))

    @given(case=st.one_of(variants))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case: Any) -> None:
        case.call_and_validate(base_url=served.url, headers=served.headers, checks=CHECKS)

    run()
