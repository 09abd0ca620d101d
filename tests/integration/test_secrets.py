"""No Twilio auth token or API key in clear at rest: topics, the worker's tables, the SQL
store, the logs; rotation.

A real stack (RocksDB tables, PostgreSQL store) is given a subaccount through the admin API
and sends a message with it, and an API key is made and used; then every topic of the stack
(every partition, from offset 0), every file under the data directory and every row of the
database are searched for the token's and the key's bytes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from feeds.secret_box import SecretBox, Undecryptable, new_key
from schemas.config import ConfigChange, SealedSubaccount
from schemas.topics import Topics
from tests.factories import create_use_case, unique_number
from tests.harness import AUTH_TOKEN, Stack
from tests.integration.test_lifecycle import WEBHOOK, callback_params, signed
from tests.sinks.helpers import _dsn

pytestmark = pytest.mark.integration

OLD, NEW = new_key(), new_key()
#: A second subaccount, only ever put through the admin API (never used with Twilio).
OTHER_SID = "AC" + "7" * 32
OTHER_TOKEN = f"other-token-{uuid.uuid4().hex}"
TOKENS = (AUTH_TOKEN.encode(), OTHER_TOKEN.encode())


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, pg_url: str
) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("secrets"), kafka_bootstrap, database_url=pg_url,
        table_store="rocksdb://", secret_keys=OLD,
    )  # fmt: skip
    with running.running():
        yield running


async def stack_topics(stack: Stack) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(stack.prefix))
    finally:
        await admin.close()


async def topic_bytes(stack: Stack) -> dict[str, list[bytes]]:
    """Keys, values and headers of every record of every topic of the stack."""
    out: dict[str, list[bytes]] = {}
    for topic in await stack_topics(stack):
        records = await stack.read_topic(topic.removeprefix(stack.prefix))
        out[topic] = [
            b"".join([r.key or b"", r.value or b"", *(v for _, v in r.headers or ())])
            for r in records
        ]
    return out


async def database_text(url: str) -> dict[str, str]:
    """Every row of every table of the database, as JSON text."""
    conn = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        out = {}
        for row in tables:
            name = f'"{row["table_schema"]}"."{row["table_name"]}"'
            rows = await conn.fetch(f"SELECT row_to_json(t)::text AS j FROM {name} t")
            out[name] = "\n".join(r["j"] for r in rows)
        return out
    finally:
        await conn.close()


def files_holding(root: Path, needles: tuple[bytes, ...]) -> list[str]:
    return [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and any(n in path.read_bytes() for n in needles)
    ]


def live_subaccounts(records: list[tuple[bytes | None, bytes | None]]) -> dict[str, bytes]:
    """The latest value of every subaccount key (the compacted topic's live head)."""
    latest: dict[str, bytes | None] = {}
    for key, value in records:
        if key and key.startswith(b"subaccount:"):
            latest[key.decode()] = value
    return {k: v for k, v in latest.items() if v is not None}


async def config_records(stack: Stack) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in await stack.read_topic(Topics.CONFIG.base_name)]


def sealed_of(value: bytes) -> SealedSubaccount:
    entity = ConfigChange.model_validate_json(value).entity
    assert isinstance(entity, SealedSubaccount)
    return entity


async def make_api_key(stack: Stack, use_case_id: str) -> tuple[bytes, str]:
    """A key made through the admin API and used once: its secret part, and its id."""
    async with stack.admin() as admin:
        made = await admin.post(
            "/v1/admin/api-keys",
            json={"name": "at rest", "role": "sms", "use_case_ids": [use_case_id]},
        )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    async with stack.client(key) as client:
        assert (await client.get("/v1/sms/")).status_code == 200  # read from the config topic
    return key.removeprefix("sl_sms_").encode(), made.json()["id"]


async def test_no_secret_at_rest_anywhere(stack: Stack, pg_url: str) -> None:
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)  # puts ACCOUNT_SID with AUTH_TOKEN
        put = await admin.put(
            f"/v1/admin/twilio-subaccounts/{OTHER_SID}", json={"auth_token": OTHER_TOKEN}
        )
        assert put.status_code in (200, 201) and OTHER_TOKEN not in put.text
        answer = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case["id"], "to_phone_number": unique_number(),
                  "message": "at rest"},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text  # the worker used the token with Twilio
        record_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while (got := await client.get(f"/v1/sms/{record_id}")).json()["status"] != "delivered":
            assert time.monotonic() < deadline, got.text
            await asyncio.sleep(0.3)

    api_key, api_key_id = await make_api_key(stack, use_case["id"])
    secrets = (*TOKENS, api_key)

    # The place the tokens are: sealed on the config topic, opened by OLD.
    config = await config_records(stack)
    assert any(k == f"api_key:{api_key_id}".encode() for k, _ in config)  # its hash is there
    live = live_subaccounts(config)
    box = SecretBox([OLD])
    opened = {sealed_of(v).account_sid: box.open(sealed_of(v).sealed_auth_token or "")
              for v in live.values()}  # fmt: skip
    assert opened[OTHER_SID] == OTHER_TOKEN and AUTH_TOKEN in opened.values()

    found = await topic_bytes(stack)
    assert Topics.CONFIG.name(stack.prefix) in found and Topics.STATUS.name(stack.prefix) in found
    leaks = [t for t, values in found.items() if any(n in v for v in values for n in secrets)]
    assert leaks == []
    rows = await database_text(pg_url)
    assert any(record_id in text for text in rows.values())  # the store has the record
    assert [t for t, text in rows.items() if any(n.decode() in text for n in secrets)] == []
    data_dir = stack.root / "var"
    assert any(p.suffix == ".sst" or p.name.startswith("MANIFEST") for p in data_dir.rglob("*"))
    assert files_holding(data_dir, secrets) == []
    assert files_holding(stack.root / "logs", secrets) == []


def run_rotate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smslane.cli", "secrets", "rotate"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_rotation_leaves_no_record_under_the_old_key(stack: Stack) -> None:
    # A record as written before tokens were sealed: rotation seals it too.
    legacy_sid, legacy_token = "AC" + "8" * 32, f"legacy-{uuid.uuid4().hex}"
    await _write_legacy(stack, legacy_sid, legacy_token)
    env = {**stack.env, "SMSLANE_SECRET_KEYS": f"{NEW},{OLD}"}
    done = await asyncio.to_thread(run_rotate, env)
    assert done.returncode == 0, done.stderr
    assert "sealed with the first key" in done.stdout
    assert legacy_token not in done.stdout + done.stderr

    live = live_subaccounts(await config_records(stack))
    assert {OTHER_SID, legacy_sid} <= {sealed_of(v).account_sid for v in live.values()}
    only_new = SecretBox([NEW])
    for value in live.values():
        entity = sealed_of(value)
        assert entity.sealed_auth_token is not None and entity.auth_token is None
        only_new.open(entity.sealed_auth_token)
        with pytest.raises(Undecryptable):
            SecretBox([OLD]).open(entity.sealed_auth_token)
        assert legacy_token.encode() not in value

    # Again: nothing left to do.
    again = await asyncio.to_thread(run_rotate, env)
    assert again.returncode == 0 and again.stdout.startswith("0 subaccount(s)"), again.stdout

    # The worker and the ingress now run with the new key alone, and send.
    for child in (stack.worker, stack.ingress):
        child.env["SMSLANE_SECRET_KEYS"] = NEW
    stack.ingress.stop()
    stack.restart_worker()
    stack.ingress.start()
    await _wait_ready(stack)
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        answer = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case["id"], "to_phone_number": unique_number(),
                  "message": "after rotation"},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text


async def test_a_subaccount_no_key_opens_answers_503_and_403_and_spares_the_others(
    stack: Stack,
) -> None:
    """A record sealed with a key neither the worker nor the ingress has."""
    lost_sid, lost_token = "AC" + "9" * 32, f"lost-{uuid.uuid4().hex}"
    sealed = SecretBox([new_key()]).seal(lost_token)  # a key no process has
    value = {"entity": {"kind": "subaccount", "account_sid": lost_sid,
                        "sealed_auth_token": sealed, "created_at": "2024-05-01T12:00:00Z",
                        "updated_at": "2024-05-01T12:00:00Z"}}  # fmt: skip
    await _write_config(stack, f"subaccount:{lost_sid}", json.dumps(value).encode())
    async with stack.admin() as admin, stack.client() as client:
        lost = await create_use_case(admin, account_sid=lost_sid)
        fine = await create_use_case(admin)
        answer = await client.post(
            "/v1/sms/",
            json={"use_case_id": lost["id"], "to_phone_number": unique_number(),
                  "message": "never sent"},
        )  # fmt: skip
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "provider_unavailable"
        assert lost_sid in answer.json()["detail"] and lost_token not in answer.text
        other = await client.post(
            "/v1/sms/",
            json={"use_case_id": fine["id"], "to_phone_number": unique_number(),
                  "message": "sent"},
        )  # fmt: skip
        assert other.status_code == 201, other.text
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        params = {**callback_params("SM" + uuid.uuid4().hex, "delivered"), "AccountSid": lost_sid}
        refused = await http.post(WEBHOOK, data=params, headers=signed(stack, params, lost_token))
        assert refused.status_code == 403
    async with stack.admin() as admin, stack.client() as client:
        # Putting the token again keeps the subaccount's creation (200, not 201) and makes it
        # usable (the simulator knows no such account: Twilio's own refusal answers now).
        again = await admin.put(
            f"/v1/admin/twilio-subaccounts/{lost_sid}", json={"auth_token": lost_token}
        )
        assert again.status_code == 200 and again.json()["created_at"].startswith("2024-05-01")
        healed = await client.post(
            "/v1/sms/",
            json={"use_case_id": lost["id"], "to_phone_number": unique_number(),
                  "message": "sent now"},
        )  # fmt: skip
        assert "cannot be decrypted" not in healed.text, healed.text
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        accepted = await http.post(WEBHOOK, data=params, headers=signed(stack, params, lost_token))
        assert accepted.status_code == 204  # signed by the token now in force
    worker_log = stack.worker.log_path.read_text()
    assert f"not sent: The auth token of the use case's Twilio subaccount {lost_sid}" in worker_log
    logs = "".join(p.read_text(errors="replace") for p in (stack.root / "logs").iterdir())
    assert lost_token not in logs


async def _write_legacy(stack: Stack, sid: str, token: str) -> None:
    value = {"entity": {"kind": "subaccount", "account_sid": sid, "auth_token": token,
                        "friendly_name": None, "created_at": "2024-05-01T12:00:00Z",
                        "updated_at": "2024-05-01T12:00:00Z"}}  # fmt: skip
    await _write_config(stack, f"subaccount:{sid}", json.dumps(value).encode())


async def _write_config(stack: Stack, key: str, value: bytes) -> None:
    """Write a record to the stack's config topic directly, as an older smslane would."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics.CONFIG.name(stack.prefix), value, key=key.encode(), partition=0
        )
    finally:
        await producer.stop()


async def _wait_ready(stack: Stack) -> None:
    deadline = time.monotonic() + 90
    async with stack.client() as client:
        while True:
            stack.ingress.check_alive()
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except Exception:
                pass
            assert time.monotonic() < deadline, stack.logs()
            await asyncio.sleep(0.3)
