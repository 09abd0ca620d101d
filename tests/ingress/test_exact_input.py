"""What a route accepts is what its document says: the mismatches schemathesis once found.

Each test pins one kind (``test_schemathesis.py`` explores them all): a body that is not
UTF-8, a number where a boolean or a date-time belongs, an empty region or cursor, the
``Allow`` of a 405, and the document declaring each constraint the route enforces.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ingress import examples
from tests.ingress.test_routes import assert_error

USE_CASES = "/v1/admin/sms-use-cases"


@pytest.fixture
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def declares(schema: Any, key: str, value: Any) -> bool:
    """Whether ``key: value`` appears anywhere in ``schema`` (inside ``anyOf``, ``items``...)."""
    if isinstance(schema, dict):
        return schema.get(key) == value or any(declares(v, key, value) for v in schema.values())
    if isinstance(schema, list):
        return any(declares(v, key, value) for v in schema)
    return False


async def test_a_body_that_is_not_utf8_is_invalid_request(admin: httpx.AsyncClient) -> None:
    answer = await admin.put(
        "/v1/admin/brands/acme",
        content=b"\xce\x82\x13\xff",
        headers={"Content-Type": "application/json"},
    )
    assert_error(answer, 422, "invalid_request")
    assert "UTF-8" in answer.json()["detail"]


async def test_a_body_that_is_not_json_is_invalid_request(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/v1/sms/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(answer, 422, "invalid_request")


async def test_booleans_are_true_or_false_only(admin: httpx.AsyncClient) -> None:
    for active in (0, 1, "true", "yes"):
        body = {**examples.USE_CASE_BODY, "active": active}
        assert_error(await admin.post(USE_CASES, json=body), 422, "invalid_request")
    created = await admin.post(USE_CASES, json={**examples.USE_CASE_BODY, "active": False})
    assert created.status_code == 201 and created.json()["active"] is False
    path = f"{USE_CASES}/{created.json()['id']}"
    assert_error(await admin.patch(path, json={"active": 0}), 422, "invalid_request")


async def test_regions_are_two_letters_as_documented(
    admin: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    for regions in ([""], ["USA"], ["U1"]):
        body = {**examples.USE_CASE_BODY, "permitted_regions": regions}
        assert_error(await admin.post(USE_CASES, json=body), 422, "invalid_request")
    body = {**examples.USE_CASE_BODY, "permitted_regions": ["us", "Ca"]}
    created = await admin.post(USE_CASES, json=body)
    assert created.json()["permitted_regions"] == ["US", "CA"]
    for model in ("UseCaseBody", "UseCasePatch"):
        field = spec["components"]["schemas"][model]["properties"]["permitted_regions"]
        assert declares(field, "pattern", "^[A-Za-z]{2}$"), field


async def test_date_times_are_not_numbers(client: httpx.AsyncClient) -> None:
    for value in ("0.5", "1764151200", "-1", "1e9"):
        answer = await client.get("/v1/sms/", params={"created_before": value})
        assert_error(answer, 422, "invalid_request")
    answer = await client.get("/v1/sms/", params={"created_after": "2026-11-26T10:00:00Z"})
    assert answer.status_code == 200, answer.text


async def test_an_empty_cursor_is_refused_as_documented(
    client: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    assert_error(await client.get("/v1/sms/", params={"cursor": ""}), 422, "invalid_request")
    parameters = spec["paths"]["/v1/sms/"]["get"]["parameters"]
    cursor = next(p for p in parameters if p["name"] == "cursor")
    assert declares(cursor, "minLength", 1), cursor


async def test_a_405_allows_every_method_of_the_path(
    admin: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    for path, template in (
        ("/v1/sms/", "/v1/sms/"),
        (f"{USE_CASES}/{examples.RECORD['use_case_id']}", USE_CASES + "/{use_case_id}"),
    ):
        answer = await admin.request("OPTIONS", path)
        assert_error(answer, 405, "method_not_allowed")
        allowed = {m.strip().lower() for m in answer.headers["allow"].split(",")}
        assert allowed == set(spec["paths"][template]), (path, answer.headers["allow"])


async def test_routes_that_answer_401_declare_the_bearer_key(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            declared = op.get("security") == [{"bearer": []}]
            assert declared == ("401" in op["responses"]), (method, path)
    assert "security" not in spec["paths"]["/v1/webhook/twilio/sms-status"]["post"]
