"""A worker whose data directory holds tables from before its changelog topics were
recreated (or from another cluster) starts: each such partition file is discarded with one
log line and restored from its changelog. Faust stopped at every start instead ("persisted
offset is higher than the last offset in that topic")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from feeds import kafka_clients
from smslane.processes import wait_until_async
from tests.factories import create_use_case, unique_number
from tests.harness import Stack
from tests.integration.test_lifecycle import send_with_scenario, wait_for
from tests.integration.test_send import send

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("foreign"), kafka_bootstrap, table_store="rocksdb://")
    with running.running():
        yield running


async def delete_table_changelogs(stack: Stack) -> list[str]:
    """Delete the worker's table changelogs (not the configuration topic); their names."""
    admin = kafka_clients.admin(stack.kafka_settings)
    await admin.start()
    try:
        config = stack.topic("smslane-config-changelog")
        names = [
            name for name in await admin.list_topics()
            if name.startswith(f"{stack.worker_group}-") and name.endswith("-changelog")
            and name != config
        ]  # fmt: skip
        await admin.delete_topics(names)

        async def gone() -> bool:
            return not set(names) & set(await admin.list_topics())

        await wait_until_async(gone, 30, "changelog topics deleted")
        return names
    finally:
        await admin.close()


async def test_a_worker_with_tables_ahead_of_recreated_changelogs_starts(stack: Stack) -> None:
    sent = await send_with_scenario(stack, "delivered")
    await wait_for(stack, sent["id"], lambda r: r["status"] == "delivered")
    stack.worker.stop()
    assert await delete_table_changelogs(stack)
    stack.ready_file.unlink(missing_ok=True)
    stack.worker.start()
    await asyncio.to_thread(stack.wait_worker_ready)
    discarded = [line for line in stack.worker.log_path.read_text().splitlines()
                 if "discarded, the partition is restored from its changelog" in line]  # fmt: skip
    assert discarded, stack.worker.tail(40)
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        assert (await send(client, use_case["id"], unique_number())).status_code == 201
