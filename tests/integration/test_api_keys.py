"""API keys on a real stack with two ingress processes: made once, revoked everywhere, scoped.

The keys are made and revoked through one ingress and used through both: the second learns
of them only from the config topic, as any other ingress of a deployment would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from smslane.processes import wait_until_async
from tests.factories import create_use_case, unique_number
from tests.harness import Stack

pytestmark = pytest.mark.integration

KEYS = "/v1/admin/api-keys"
#: The bound of docs/api.md: a revoked key is refused by every ingress within 5 s.
REVOCATION_BOUND_S = 5.0


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("keys"), kafka_bootstrap, ingresses=2)
    with running.running():
        yield running


async def make_key(stack: Stack, **body: Any) -> dict[str, Any]:
    async with stack.admin() as admin:
        answer = await admin.post(KEYS, json={"name": "orders", "role": "sms", **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def status_of(stack: Stack, key: str, ingress: int, path: str = "/v1/sms/") -> int:
    async with stack.client(key, ingress=ingress) as client:
        return (await client.get(path)).status_code


async def accepted_everywhere(stack: Stack, key: str) -> None:
    """Wait until every ingress has read the new key from the config topic."""
    for ingress in range(len(stack.ingress_urls)):

        async def accepted(ingress: int = ingress) -> bool:
            return await status_of(stack, key, ingress) == 200

        await wait_until_async(accepted, 15.0, f"the key accepted by ingress {ingress}")


def send(use_case_id: str) -> dict[str, str]:
    return {"use_case_id": use_case_id, "to_phone_number": unique_number(), "message": "scoped"}


async def test_a_key_is_shown_once_and_never_listed(stack: Stack) -> None:
    created = await make_key(stack, use_case_ids=None)
    key, secret = created["key"], created["key"].removeprefix("sl_sms_")
    assert key.startswith("sl_sms_") and set(created) >= {"id", "name", "role", "created_at"}
    await accepted_everywhere(stack, key)
    for ingress in (0, 1):
        async with stack.client(stack.accounts.admin_key, ingress=ingress) as admin:
            listed = await admin.get(KEYS)
        assert listed.status_code == 200
        (shown,) = [k for k in listed.json()["items"] if k["id"] == created["id"]]
        assert shown == {k: v for k, v in created.items() if k != "key"}
        assert secret not in listed.text and secret[:16] not in listed.text
    async with stack.client(key) as client:
        assert (await client.get(KEYS)).status_code == 403  # an sms key on an admin route


async def test_a_key_revoked_through_one_ingress_is_refused_by_the_other(stack: Stack) -> None:
    created = await make_key(stack, use_case_ids=None)
    key = created["key"]
    await accepted_everywhere(stack, key)
    async with stack.client(stack.accounts.admin_key, ingress=0) as admin:
        assert (await admin.delete(f"{KEYS}/{created['id']}")).status_code == 204
    assert await status_of(stack, key, 0) == 401  # the ingress that revoked it: at once

    async def refused_by_the_other() -> bool:
        return await status_of(stack, key, 1) == 401

    await wait_until_async(refused_by_the_other, REVOCATION_BOUND_S, "ingress 2 to refuse")
    async with stack.client(key, ingress=1) as client:
        refused = await client.post("/v1/sms/", json=send(str(uuid.uuid4())))
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    log = stack.ingress.log_path.read_text()  # an audit trail, without the key
    assert f"API key {created['id']} ('orders') revoked by key" in log
    assert key.removeprefix("sl_sms_") not in log


async def test_a_scoped_key_sends_reads_and_lists_only_its_use_cases(stack: Stack) -> None:
    async with stack.admin() as admin:
        mine, theirs = (await create_use_case(admin))["id"], (await create_use_case(admin))["id"]
    created = await make_key(stack, use_case_ids=[mine])
    key = created["key"]
    await accepted_everywhere(stack, key)
    async with stack.client() as everything, stack.client(key, ingress=1) as scoped:
        unknown = await everything.post("/v1/sms/", json=send(str(uuid.uuid4())))
        outside = await scoped.post("/v1/sms/", json=send(theirs))
        assert outside.status_code == 404 and outside.json() == unknown.json()
        assert outside.json()["code"] == "use_case_not_found"
        own = await scoped.post("/v1/sms/", json=send(mine))
        foreign = await everything.post("/v1/sms/", json=send(theirs))
        assert own.status_code == 201 and foreign.status_code == 201, (own.text, foreign.text)
        own_id, foreign_id = own.json()["id"], foreign.json()["id"]

        async def both_stored() -> bool:
            page = (await everything.get("/v1/sms/", params={"limit": 100})).json()["items"]
            return {own_id, foreign_id} <= {r["id"] for r in page}

        await wait_until_async(both_stored, 15.0, "the sink to store both records")
        assert (await scoped.get(f"/v1/sms/{own_id}")).status_code == 200
        hidden = await scoped.get(f"/v1/sms/{foreign_id}")
        absent_id = str(uuid.uuid4())
        absent = await scoped.get(f"/v1/sms/{absent_id}")
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json()["detail"].replace(foreign_id, absent_id) == absent.json()["detail"]
        listed = (await scoped.get("/v1/sms/", params={"limit": 100})).json()["items"]
        assert {r["use_case_id"] for r in listed} == {mine} and own_id in {r["id"] for r in listed}
        page = await scoped.get("/v1/sms/", params={"use_case_id": theirs})
        assert page.status_code == 200 and page.json() == {"items": [], "next_cursor": None}


async def test_a_scope_must_name_live_use_cases(stack: Stack) -> None:
    async with stack.admin() as admin:
        deleted = (await create_use_case(admin))["id"]
        assert (await admin.delete(f"/v1/admin/sms-use-cases/{deleted}")).status_code == 204
        for scope in ([deleted], [str(uuid.uuid4())]):
            answer = await admin.post(
                KEYS, json={"name": "x", "role": "sms", "use_case_ids": scope}
            )
            assert answer.status_code == 422 and answer.json()["code"] == "invalid_request"
    async with httpx.AsyncClient(base_url=stack.base_url) as anonymous:
        for token in ("sl_sms_malformed", "sl_admin_" + "A" * 43):
            answer = await anonymous.get(KEYS, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
