"""Baseline (a): the least an HTTP service can do to send an SMS, without Kafka.

A FastAPI app with one route, ``POST /v1/sms/``, that validates the same body as smslane,
makes the same two Twilio calls through the same ``twilio`` package (Lookup v2 line type, then
Messages create, async client on one shared aiohttp session) against the simulator, and answers
201 with a record. No idempotency, no configuration, no durability: it is the floor smslane's
send path is compared with. Run by the harness as::

    python -m bench.baseline_app --port P --sim-url URL --account SID:TOKEN --service MGSID
"""

from __future__ import annotations

import argparse
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client


class SendSmsBody(BaseModel):
    use_case_id: uuid.UUID
    to_phone_number: str = Field(pattern=r"^\+[1-9][0-9]{1,14}$")
    message: str = Field(min_length=1, max_length=1600)


def create_app(sim_url: str, account_sid: str, auth_token: str, service_sid: str) -> FastAPI:
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = AsyncTwilioHttpClient(timeout=5.0)
        client = Client(account_sid, auth_token, account_sid, http_client=http)
        client.edge = client.region = None
        client.api.base_url = sim_url
        client.lookups.base_url = sim_url
        state["client"] = client
        try:
            yield
        finally:
            await http.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/sms/", status_code=201)
    async def send_sms(body: SendSmsBody) -> JSONResponse:
        client: Client = state["client"]
        received = datetime.now(UTC)
        try:
            await client.lookups.v2.phone_numbers(body.to_phone_number).fetch_async(
                fields="line_type_intelligence"
            )
            message = await client.api.v2010.accounts(account_sid).messages.create_async(
                to=body.to_phone_number,
                body=body.message,
                messaging_service_sid=service_sid,
                status_callback="http://127.0.0.1:9/unused",
            )
        except TwilioRestException as exc:
            return JSONResponse({"detail": str(exc.msg), "code": "twilio"}, status_code=422)
        record = {
            "id": str(uuid.uuid4()), "use_case_id": str(body.use_case_id),
            "message_sid": message.sid, "from_number": None, "to_number": body.to_phone_number,
            "body": body.message, "num_segments": None, "status": "pending",
            "handed_off_at": None, "delivered_at": None, "errored_at": None, "error_code": None,
            "created_at": received.isoformat(), "updated_at": received.isoformat(),
        }  # fmt: skip
        return JSONResponse(record, status_code=201)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--account", required=True, metavar="SID:TOKEN")
    parser.add_argument("--service", required=True, metavar="MGSID")
    args = parser.parse_args()
    sid, _, token = args.account.partition(":")
    app = create_app(args.sim_url, sid, token, args.service)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
        server_header=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
