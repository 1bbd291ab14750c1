"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis).

Every operation in ``/api/openapi.json`` gets generated requests; the app must never answer
with a 5xx, and every answer must match the document (status codes, content types, bodies).
Each operation runs on a fresh simulated device holding two items, so some generated ids hit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.webapp_fixtures import SimServices, add_solid_item
from webapp import create_app
from webapp.openapi import openapi_document

MAX_EXAMPLES = 25


@pytest.fixture
def fuzz_app(tmp_path: Path) -> Iterator[Flask]:
    """A fresh device per operation, with two items in its library."""
    device = SimServices(tmp_path / "data", max_upload_bytes=256 * 1024)
    add_solid_item(device.library, "red", [(255, 0, 0)])
    add_solid_item(device.library, "anim", [(0, 255, 0), (0, 0, 255)])
    device.pump()
    try:
        yield create_app(device, {"LOOP_IMPORT_WAIT_S": 10})
    finally:
        device.close()


# The document the app serves (the same function answers GET /api/openapi.json).
schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_errors_and_answers_match_the_document(fuzz_app: Flask, case: Any) -> None:
    case.call_and_validate(
        app=fuzz_app,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
