"""``/docs`` and ``/openapi.json``: every route of the contract, its examples and its errors."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from schemas.records import SmsRecord
from tests.harness import Stack

pytestmark = pytest.mark.integration

#: The contract's routes (``sms-api.md`` and the admin tables of ``contract.md``).
CONTRACT_ROUTES = {
    ("post", "/v1/sms/"),
    ("get", "/v1/sms/{}"),
    ("get", "/v1/sms/"),
    ("post", "/v1/webhook/twilio/sms-status"),
    ("put", "/v1/admin/twilio-subaccounts/{}"),
    ("put", "/v1/admin/brands/{}"),
    ("post", "/v1/admin/sms-use-cases"),
    ("get", "/v1/admin/sms-use-cases/{}"),
    ("patch", "/v1/admin/sms-use-cases/{}"),
    ("delete", "/v1/admin/sms-use-cases/{}"),
    ("put", "/v1/admin/sms-use-cases/{}/phone-numbers/{}"),
    ("delete", "/v1/admin/sms-use-cases/{}/phone-numbers/{}"),
    ("put", "/v1/admin/sms-use-cases/{}/opt-outs/{}"),
    ("delete", "/v1/admin/sms-use-cases/{}/opt-outs/{}"),
    ("post", "/v1/admin/api-keys"),
    ("get", "/v1/admin/api-keys"),
    ("delete", "/v1/admin/api-keys/{}"),
}
#: The contract's table for ``POST /v1/sms/``, plus the answers every route may give.
SEND_ERRORS = {
    (422, "invalid_request"), (404, "use_case_not_found"), (404, "use_case_inactive"),
    (422, "no_sender_numbers"), (422, "a2p_campaign_not_verified"),
    (422, "invalid_destination"), (422, "destination_opted_out"),
    (422, "region_not_permitted"), (422, "brand_suspended"), (409, "idempotency_key_reused"),
    (503, "provider_unavailable"), (401, "unauthorized"), (504, "worker_timeout"),
}  # fmt: skip


@pytest.fixture(scope="module")
def spec(observed: Stack) -> dict[str, Any]:
    answer = httpx.get(f"{observed.base_url}/openapi.json", timeout=10.0)
    assert answer.status_code == 200
    return dict(answer.json())


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, re.sub(r"\{[^}]+\}", "{}", path)): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }


def error_codes(op: dict[str, Any]) -> set[tuple[int, str]]:
    found = set()
    for status, response in op["responses"].items():
        if int(status) >= 400:
            examples = response["content"]["application/json"]["examples"]
            found |= {(int(status), code) for code in examples}
    return found


def test_docs_page_renders_the_document(observed: Stack) -> None:
    answer = httpx.get(f"{observed.base_url}/docs", timeout=10.0)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in answer.text and "/openapi.json" in answer.text


def test_every_contract_route_is_documented(spec: dict[str, Any]) -> None:
    documented = operations(spec)
    assert set(documented) >= CONTRACT_ROUTES, CONTRACT_ROUTES - set(documented)
    assert {("get", "/metrics"), ("get", "/healthz"), ("get", "/readyz")} <= set(documented)
    for key, op in documented.items():
        assert op.get("summary"), key


def test_send_documents_every_error_code_of_the_contract(spec: dict[str, Any]) -> None:
    send = operations(spec)[("post", "/v1/sms/")]
    assert error_codes(send) >= SEND_ERRORS, SEND_ERRORS - error_codes(send)


def test_auth_errors_are_documented_where_they_can_happen(spec: dict[str, Any]) -> None:
    for (method, path), op in operations(spec).items():
        codes = error_codes(op)
        if path.startswith("/v1/sms") or path.startswith("/v1/admin"):
            assert (401, "unauthorized") in codes, (method, path)
        if path.startswith("/v1/admin"):
            assert (403, "forbidden") in codes, (method, path)
        if method in ("post", "put", "patch", "delete") and path.startswith("/v1/"):
            assert {c for _, c in codes} & {"service_unavailable"}, (method, path)
    webhook = operations(spec)[("post", "/v1/webhook/twilio/sms-status")]
    assert (403, "invalid_signature") in error_codes(webhook)


def test_every_error_answer_is_detail_and_code(spec: dict[str, Any]) -> None:
    assert spec["components"]["schemas"]["Error"]["required"] == ["detail", "code"]
    assert "HTTPValidationError" not in str(spec)
    for key, op in operations(spec).items():
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, key
            for code, example in content["examples"].items():
                assert example["value"]["code"] == code, (key, status)
                assert example["value"]["detail"], (key, status)


def test_every_request_and_answer_has_an_example(spec: dict[str, Any]) -> None:
    for key, op in operations(spec).items():
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            assert "example" in content, (key, media)
        for status, response in op["responses"].items():
            if not 200 <= int(status) < 300 or int(status) == 204:
                continue
            media = response["content"]
            assert any("example" in c for c in media.values()), (key, status)


def test_record_examples_are_real_records(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    for key, status in ((("post", "/v1/sms/"), "201"), (("get", "/v1/sms/{}"), "200")):
        example = ops[key]["responses"][status]["content"]["application/json"]["example"]
        assert set(example) == set(SmsRecord.model_fields), key
        SmsRecord.model_validate(example)
    page = ops[("get", "/v1/sms/")]["responses"]["200"]["content"]["application/json"]["example"]
    assert set(page) == {"items", "next_cursor"}
    SmsRecord.model_validate(page["items"][0])
