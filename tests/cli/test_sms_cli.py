"""`smslane sms send | get | cancel | tail` as an operator runs them, on a real stack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import create_use_case, unique_number
from tests.harness import Stack, free_port
from tests.integration.test_lifecycle import wait_record

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "smslane.cli", "sms"]


def sms_cli(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**stack.env, **env}, capture_output=True, text=True, timeout=90
    )


async def _create_use_case(stack: Stack) -> str:
    async with stack.admin() as admin:
        return str((await create_use_case(admin))["id"])


@pytest.fixture(scope="module")
def use_case_id(stack: Stack) -> str:
    return asyncio.run(_create_use_case(stack))


def send(stack: Stack, use_case: str, to: str, *extra: str) -> dict[str, Any]:
    done = sms_cli(stack, "send", "--use-case", use_case, "--to", to, "--message", "Hi", *extra)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


class Tail:
    """`smslane sms tail` running as a child; its lines read with a deadline."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self, stream: asyncio.StreamReader, timeout_s: float = 30.0) -> str:
        raw = await asyncio.wait_for(stream.readline(), timeout_s)
        assert raw, f"tail ended: {(await self.proc.communicate())}"
        return raw.decode().rstrip("\n")

    async def changes_of(self, record_id: str, until: str) -> list[list[str]]:
        """The printed lines of ``record_id``, split, up to the first with status ``until``."""
        assert self.proc.stdout is not None
        seen: list[list[str]] = []
        while not seen or seen[-1][2] != until:
            fields = (await self.line(self.proc.stdout)).split()
            if fields[1] == record_id:
                seen.append(fields)
        return seen

    async def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(self.proc.communicate(), 20)
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()


@contextlib.asynccontextmanager
async def running_tail(stack: Stack, *args: str) -> AsyncIterator[Tail]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "tail", *args, env=stack.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    tail = Tail(proc)
    try:
        assert proc.stderr is not None
        ready = await tail.line(proc.stderr)
        assert ready.startswith(f"following {stack.topic('sms.status')} "), ready
        yield tail
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_send_prints_the_record_and_get_reads_it_back(stack: Stack, use_case_id: str) -> None:
    to = unique_number()
    record = send(stack, use_case_id, to)
    assert (record["to_number"], record["use_case_id"]) == (to, use_case_id)
    assert record["status"] == "pending" and record["message_sid"].startswith("SM")
    async with stack.client() as client:
        assert (await client.get(f"/v1/sms/{record['id']}")).json()["id"] == record["id"]
    done = sms_cli(stack, "get", record["id"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == record["id"]


def test_the_same_idempotency_key_answers_the_same_record(stack: Stack, use_case_id: str) -> None:
    to, key = unique_number(), f"k-{uuid.uuid4()}"
    first = send(stack, use_case_id, to, "--idempotency-key", key)
    assert send(stack, use_case_id, to, "--idempotency-key", key)["id"] == first["id"]


async def test_tail_prints_pending_sent_delivered_and_stops_on_ctrl_c(
    stack: Stack, use_case_id: str
) -> None:
    async with running_tail(stack) as tail:
        to = unique_number()
        record = send(stack, use_case_id, to)
        changes = await tail.changes_of(record["id"], until="delivered")
        assert [fields[2] for fields in changes] == ["pending", "sent", "delivered"]
        assert {fields[3] for fields in changes} == {to}
        assert {fields[4] for fields in changes} == {"-"}
        assert changes[0][0].endswith("Z")
        code, err = await tail.interrupt()
        assert code == 0, err
        assert "Traceback" not in err


async def test_tail_from_the_beginning_shows_an_earlier_message(
    stack: Stack, use_case_id: str
) -> None:
    record = send(stack, use_case_id, unique_number())
    async with stack.client() as client:
        await wait_record(client, record["id"], lambda r: r["status"] == "delivered")
    async with running_tail(stack, "--from-beginning") as tail:
        changes = await tail.changes_of(record["id"], until="delivered")
        assert [fields[2] for fields in changes] == ["pending", "sent", "delivered"]


def test_an_unknown_use_case_prints_its_code_and_fails(stack: Stack) -> None:
    done = sms_cli(
        stack, "send", "--use-case", str(uuid.uuid4()), "--to", unique_number(), "--message", "x"
    )
    assert done.returncode == 1
    assert done.stderr.startswith("use_case_not_found: "), done.stderr
    assert done.stdout == ""


def test_a_wrong_key_and_an_unknown_id_print_their_codes(stack: Stack) -> None:
    wrong = sms_cli(stack, "get", str(uuid.uuid4()), "--api-key", "not-a-key")
    assert (wrong.returncode, wrong.stderr.split(":")[0]) == (1, "unauthorized")
    missing = sms_cli(stack, "get", str(uuid.uuid4()), SMSLANE_API_KEY=stack.accounts.api_key)
    assert (missing.returncode, missing.stderr.split(":")[0]) == (1, "not_found")


def test_no_ingress_at_the_url_is_one_line(stack: Stack) -> None:
    done = sms_cli(stack, "get", str(uuid.uuid4()), "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert done.stderr.startswith("no answer from the ingress at http://127.0.0.1:")
    assert "Traceback" not in done.stderr


def test_tail_of_a_missing_topic_says_so(stack: Stack) -> None:
    done = sms_cli(stack, "tail", SMSLANE_TOPIC_PREFIX=f"absent{uuid.uuid4().hex[:8]}.")
    assert done.returncode == 1
    assert "no topic absent" in done.stderr and "SMSLANE_TOPIC_PREFIX" in done.stderr


@pytest.mark.parametrize("action", ["send", "get", "cancel", "tail"])
def test_every_action_explains_itself(action: str) -> None:
    done = subprocess.run(
        [*CLI, action, "--help"], capture_output=True, text=True, timeout=30,
        env={k: v for k, v in os.environ.items() if not k.startswith("SMSLANE_")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = "sms.status" if action == "tail" else "SMSLANE_API_KEY"
    assert expected in done.stdout


def test_send_later_then_cancel(stack: Stack, use_case_id: str) -> None:
    send_at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    record = send(
        stack, use_case_id, unique_number(), "--send-at", send_at.isoformat(),
        "--client-reference", "order-7", "--validity-period", "600",
    )  # fmt: skip
    assert record["status"] == "scheduled" and record["client_reference"] == "order-7"
    assert record["send_at"] == send_at.isoformat().replace("+00:00", "Z")
    assert record["validity_period"] == 600
    for _ in range(2):  # a second cancel prints the canceled record again
        done = sms_cli(stack, "cancel", record["id"])
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "canceled"
    unknown = sms_cli(stack, "cancel", str(uuid.uuid4()))
    assert unknown.returncode == 1 and unknown.stderr.startswith("not_found: ")
