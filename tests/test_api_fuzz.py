"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis).

Every operation in ``/api/openapi.json`` gets generated requests; the app must never answer
with a 5xx, and every answer must match the document (status codes, content types, bodies).
Each operation runs on a fresh simulated device holding two items, so some generated ids hit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


# The document the app serves (the same function answers GET /api/openapi.json). The live view
# is an endless stream that a generated client would read for ever; tests/test_live_view.py
# covers it.
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/api/display.mjpeg")


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


# Any JSON at all, including lone surrogates (valid JSON escapes, invalid in UTF-8).
_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_FIELDS = st.sampled_from(
    ["name", "enabled", "loops", "min_seconds", "ids", "action", "id", "value", "password"]
)
_OBJECTS = st.dictionaries(_FIELDS, _JSON, max_size=4)
_JSON_ROUTES = [
    ("patch", "/api/media/{id}"),
    ("put", "/api/playlist"),
    ("post", "/api/player"),
    ("post", "/api/login"),
    ("post", "/api/settings/password"),
]


@pytest.mark.parametrize(("method", "path"), _JSON_ROUTES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_OBJECTS, _JSON))
def test_any_json_body_gets_a_4xx_or_success_never_a_5xx(
    fuzz_app: Flask, method: str, path: str, body: Any
) -> None:
    device = fuzz_app.extensions["loop"]
    item_id = device.library.items()[0].id if device.library.items() else "none"
    client = fuzz_app.test_client()
    data = json.dumps(body)
    response = getattr(client, method)(
        path.format(id=item_id), data=data, content_type="application/json", headers={"X-Loop-Request": "1"}
    )
    assert response.status_code < 500, (data, response.get_data(as_text=True))
    if response.status_code >= 400:
        assert response.get_json()["error"]["message"]
