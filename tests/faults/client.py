"""A client that sends the way the README tells clients to: an Idempotency-Key on every
send, and on 503 or 504 the same request again after ``Retry-After`` (1 s if absent)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Sent:
    """One logical send: its key, body and every answer it got, last one last."""

    to: str
    message: str
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: More fields of the body (``send_at``...).
    extra: dict[str, Any] = field(default_factory=dict)
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def body(self, use_case_id: str) -> dict[str, Any]:
        """The request body, the same on every attempt."""
        return {"use_case_id": use_case_id, "to_phone_number": self.to, "message": self.message,
                **self.extra}  # fmt: skip

    @property
    def final(self) -> tuple[int, dict[str, Any]]:
        return self.answers[-1]

    @property
    def created(self) -> bool:
        return bool(self.answers) and self.final[0] == 201

    @property
    def interrupted(self) -> bool:
        """It was cut off inside the Twilio call at some point (answered so at least once)."""
        return any(
            status == 503 and "interrupted" in str(body.get("detail", ""))
            for status, body in self.answers
        )


async def send_until_answered(
    client: httpx.AsyncClient, use_case_id: str, sent: Sent, *, give_up_after_s: float = 60.0
) -> Sent:
    """POST the send, retrying on 503/504 and on a lost connection, until another answer
    comes or ``give_up_after_s`` passes (an interrupted request answers 503 until
    reconciliation has found its message at Twilio, or sent it)."""
    deadline = time.monotonic() + give_up_after_s
    body = sent.body(use_case_id)
    while True:
        try:
            answer = await client.post("/v1/sms/", json=body, headers={"Idempotency-Key": sent.key})
        except httpx.TransportError as exc:
            sent.answers.append((0, {"detail": repr(exc)}))
            retry_after = 1.0
        else:
            sent.answers.append((answer.status_code, answer.json()))
            if answer.status_code not in (503, 504):
                return sent
            retry_after = float(answer.headers.get("Retry-After", "1"))
        if time.monotonic() + retry_after > deadline:
            return sent
        await asyncio.sleep(min(retry_after, 2.0))
