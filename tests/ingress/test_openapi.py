"""The OpenAPI document in-process: the contract checks of the integration test, no Kafka."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.ingress.conftest import client_for
from tests.observability import test_openapi as contract


@pytest.fixture
async def spec(app: FastAPI) -> dict[str, Any]:
    async with client_for(app, key=None) as http:
        answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


@pytest.mark.parametrize(
    "check",
    [
        contract.test_every_contract_route_is_documented,
        contract.test_send_documents_every_error_code_of_the_contract,
        contract.test_auth_errors_are_documented_where_they_can_happen,
        contract.test_every_error_answer_is_detail_and_code,
        contract.test_every_request_and_answer_has_an_example,
        contract.test_record_examples_are_real_records,
    ],
    ids=lambda check: check.__name__.removeprefix("test_"),
)
def test_the_document_meets_the_contract(check: Any, spec: dict[str, Any]) -> None:
    check(spec)


def test_examples_keep_their_nulls(spec: dict[str, Any]) -> None:
    """FastAPI drops ``None`` from what it generates; the examples must keep theirs."""
    created = spec["paths"]["/v1/sms/"]["post"]["responses"]["201"]["content"]
    assert created["application/json"]["example"]["delivered_at"] is None
    assert "x-smslane-example-json" not in str(spec)


def test_the_webhook_documents_its_form_and_signature(spec: dict[str, Any]) -> None:
    webhook = spec["paths"]["/v1/webhook/twilio/sms-status"]["post"]
    assert "application/x-www-form-urlencoded" in webhook["requestBody"]["content"]
    assert [p["name"] for p in webhook["parameters"]] == ["X-Twilio-Signature"]
    assert set(webhook["responses"]) == {"204", "403", "413", "503"}


async def test_docs_page_renders_in_process(app: FastAPI) -> None:
    async with client_for(app, key=None) as http:
        answer: httpx.Response = await http.get("/docs")
    assert answer.status_code == 200 and "swagger-ui" in answer.text
