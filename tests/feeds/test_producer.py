"""ReplacingProducer's rules, without a broker: which errors replace the producer, that
one replacement serves every send that saw the breakage, and what a failed start leaves.
(tests/ingress/test_bridge_recovery.py has a real broker refuse a real producer.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber, ProducerFenced

from feeds.producer import ReplacingProducer, is_fatal


class FakeProducer:
    """Answers each send with the next of ``answers`` (an exception is raised)."""

    def __init__(self, *answers: Any, start_error: Exception | None = None) -> None:
        self.answers = list(answers)
        self.start_error = start_error
        self.sent: list[bytes | None] = []
        self.stopped = False

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, value: bytes | None, **kw: Any) -> Any:
        self.sent.append(value)
        await asyncio.sleep(0)
        answer = self.answers.pop(0) if self.answers else "ok"
        if isinstance(answer, Exception):
            raise answer
        return answer


class Factory:
    def __init__(self, *producers: FakeProducer) -> None:
        self.producers = list(producers)
        self.made: list[FakeProducer] = []

    def __call__(self) -> AIOKafkaProducer:
        made = self.producers.pop(0)
        self.made.append(made)
        return made  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("error", "fatal"),
    [
        (OutOfOrderSequenceNumber(), True),
        (ProducerFenced(), True),
        (KafkaTimeoutError(), False),
        (RuntimeError(), False),
    ],
)
def test_fatal_errors(error: Exception, fatal: bool) -> None:
    assert is_fatal(error) is fatal
    wrapped = RuntimeError("while sending")
    wrapped.__cause__ = error
    assert is_fatal(wrapped) is fatal


async def test_a_fatal_error_replaces_the_producer_and_sends_again_on_the_new_one() -> None:
    broken, fresh = FakeProducer(OutOfOrderSequenceNumber()), FakeProducer("offset 7")
    producer = ReplacingProducer(Factory(broken, fresh), "test")
    await producer.start()
    assert await producer.send_and_wait("t", b"x") == "offset 7"
    assert (broken.sent, fresh.sent) == ([b"x"], [b"x"])
    assert producer.producer is fresh and producer.replacements == 1
    await asyncio.gather(*producer._stopping)
    assert broken.stopped


async def test_an_ordinary_error_is_raised_and_keeps_the_producer() -> None:
    only = FakeProducer(KafkaTimeoutError())
    producer = ReplacingProducer(Factory(only), "test")
    await producer.start()
    with pytest.raises(KafkaTimeoutError):
        await producer.send_and_wait("t", b"x")
    assert producer.producer is only and producer.replacements == 0


async def test_sends_that_all_met_the_breakage_replace_it_once() -> None:
    broken = FakeProducer(*[OutOfOrderSequenceNumber()] * 5)
    factory = Factory(broken, FakeProducer(), FakeProducer())
    producer = ReplacingProducer(factory, "test")
    await producer.start()
    answers = await asyncio.gather(*(producer.send_and_wait("t", b"%d" % n) for n in range(5)))
    assert answers == ["ok"] * 5
    assert producer.replacements == 1 and len(factory.made) == 2


async def test_a_replacement_that_cannot_start_raises_and_the_next_send_tries_again() -> None:
    broken = FakeProducer(OutOfOrderSequenceNumber(), OutOfOrderSequenceNumber())
    unstarted = FakeProducer(start_error=KafkaTimeoutError())
    producer = ReplacingProducer(Factory(broken, unstarted, FakeProducer()), "test")
    await producer.start()
    with pytest.raises(KafkaTimeoutError):
        await producer.send_and_wait("t", b"x")
    await asyncio.gather(*producer._stopping)
    assert producer.producer is broken and unstarted.stopped
    assert await producer.send_and_wait("t", b"y") == "ok"
    assert producer.replacements == 1
