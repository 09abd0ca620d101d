"""GET /v1/sms/{id} and the list, through the ingress, on the store the sink fills."""

from __future__ import annotations

import uuid

import httpx
import pytest

from smslane.processes import wait_until_async
from tests.factories import create_use_case, unique_number
from tests.harness import Stack
from tests.integration.test_send import assert_error

pytestmark = pytest.mark.integration


async def test_list_filters_and_paginates_newest_first(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        numbers = [unique_number() for _ in range(3)]
        sent = []
        for to in numbers:
            answer = await client.post(
                "/v1/sms/",
                json={"use_case_id": use_case["id"], "to_phone_number": to, "message": "x"},
            )
            assert answer.status_code == 201, answer.text
            sent.append(answer.json())
        # The list reads the store, which the sink fills a few milliseconds after the 201.

        async def all_listed() -> httpx.Response | None:
            listed = await client.get("/v1/sms/", params={"use_case_id": use_case["id"]})
            assert listed.status_code == 200, listed.text
            return listed if len(listed.json()["items"]) == 3 else None

        listed = await wait_until_async(all_listed, 20, "the 3 records listed", interval_s=0.05)
        assert [r["id"] for r in listed.json()["items"]] == [r["id"] for r in reversed(sent)]
        assert listed.json()["next_cursor"] is None

        first = await client.get("/v1/sms/", params={"use_case_id": use_case["id"], "limit": 2})
        page = first.json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = await client.get(
            "/v1/sms/",
            params={"use_case_id": use_case["id"], "limit": 2, "cursor": page["next_cursor"]},
        )
        ids = [r["id"] for r in page["items"] + rest.json()["items"]]
        assert ids == [r["id"] for r in reversed(sent)]

        by_number = await client.get("/v1/sms/", params={"to_number": numbers[1]})
        assert [r["id"] for r in by_number.json()["items"]] == [sent[1]["id"]]
        window = await client.get(
            "/v1/sms/",
            params={
                "use_case_id": use_case["id"],
                "created_after": sent[0]["created_at"],
                "created_before": sent[2]["created_at"],
            },
        )
        assert [r["id"] for r in window.json()["items"]] == [sent[1]["id"]]
        pending = await client.get(
            "/v1/sms/", params={"use_case_id": use_case["id"], "status": "failed"}
        )
        assert pending.json()["items"] == []


async def test_bad_reads_answer_clear_errors(stack: Stack) -> None:
    async with stack.client() as client:
        assert_error(await client.get("/v1/sms/not-a-uuid"), 404, "not_found")
        assert_error(await client.get(f"/v1/sms/{uuid.uuid4()}"), 404, "not_found")
        bad_cursor = assert_error(
            await client.get("/v1/sms/", params={"cursor": "garbage"}), 422, "invalid_request"
        )
        assert "cursor" in bad_cursor["detail"]
        too_many = assert_error(
            await client.get("/v1/sms/", params={"limit": 101}), 422, "invalid_request"
        )
        assert "limit" in too_many["detail"]
        bad_status = assert_error(
            await client.get("/v1/sms/", params={"status": "lost"}), 422, "invalid_request"
        )
        assert "status" in bad_status["detail"]
        bad_date = assert_error(
            await client.get("/v1/sms/", params={"created_after": "yesterday"}),
            422,
            "invalid_request",
        )
        assert "created_after" in bad_date["detail"]
