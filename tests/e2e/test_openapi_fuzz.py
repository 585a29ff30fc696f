"""Schemathesis against a running node: no 5xx, and every answer matches the OpenAPI document.

Bounded: a fixed number of generated requests per operation, so the run stays
well under a few minutes. Requests carry a valid token (for food-coop), so
the protected routes are exercised past their auth check too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from support.nodes import login, start_node

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def node_url(tmp_path_factory, coop_log_file: Path, icn_path_module: str, icn_env_module: dict):
    """A node with the members' log imported and rate limits out of the way."""
    env = dict(icn_env_module, ICN_RATE_IP_BURST="100000", ICN_RATE_IP_PER_S="100000",
               ICN_RATE_DID_BURST="100000", ICN_RATE_DID_PER_S="100000")  # fmt: skip
    node = start_node(icn_path_module, env, tmp_path_factory.mktemp("fuzz") / "node", coop_log_file)
    yield node.base
    node.stop()  # exit 0 and no traceback in its log: nothing crashed the node


def test_generated_requests_never_crash_the_node_or_break_the_schema(
    node_url: str, members: dict
) -> None:
    schema = schemathesis.openapi.from_url(f"{node_url}/schema/openapi.json")
    token = login(node_url, members["alice"])
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.response_schema_conformance,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
    ]
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 11
    failures: list[str] = []
    statuses: list[int] = []
    for operation in operations:
        if operation.path.endswith(("/stream", "/ws")):
            continue  # endless responses: covered by the stream tests

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            response = case.call(base_url=node_url, timeout=10)
            statuses.append(response.status_code)
            case.validate_response(response, checks=checks)

        try:
            run()
        except Exception as exc:  # collect per operation, report all at once
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
    # The run really exercised the API: many requests, some accepted, some refused.
    assert len(statuses) >= 5 * len(operations)
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
    assert not any(s >= 500 for s in statuses)
