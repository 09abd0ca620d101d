"""``smslane webhooks listen``: a webhook receiver for developers, printing each delivery.

Register ``http://127.0.0.1:PORT/`` as an endpoint (with
``SMSLANE_WEBHOOK_ALLOW_PRIVATE_URLS=on``) and every delivery is printed as one line: the
time, the event id and type, the record's id, status and version (or the inbound message's
sender and text), and whether the signature checks out with ``--secret``. Every delivery is
answered 200, or ``--status`` to watch the retries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from schemas.settings import Settings
from schemas.webhook_signature import HEADER, verify

_DESCRIPTION = """\
Listen for webhook deliveries on http://HOST:PORT/ (any path) and print one line per
delivery. Register that URL as a webhook endpoint (POST /v1/admin/webhook-endpoints); smslane
accepts an http:// or loopback URL only with SMSLANE_WEBHOOK_ALLOW_PRIVATE_URLS=on, which
`smslane up --demo` sets. With --secret (the endpoint's whsec_... secret) each line says
whether the Smslane-Signature header checks out. Ctrl-C stops it."""


def describe(body: bytes, signature: str, secret: str | None, now: float) -> str:
    """The line printed for one delivery."""
    if secret is None:
        verdict = "signature unchecked"
    else:
        good = verify(signature, body, secret, now=now)
        verdict = "signature ok" if good else "signature INVALID"
    try:
        event: dict[str, Any] = json.loads(body)
        data = event.get("data") or {}
        if event.get("type") == "sms.inbound":
            what = f"from {data.get('from_number')}: {data.get('body')!r}"
        else:
            what = f"record {data.get('id')} {data.get('status')} v{data.get('version')}"
        head = f"{event.get('id')} {event.get('type')} {what}"
    except (ValueError, AttributeError):
        head = f"not JSON ({len(body)} bytes)"
    stamp = datetime.fromtimestamp(now, UTC).strftime("%H:%M:%S")
    return f"{stamp} {head} ({verdict})"


class Listener:
    """Prints each POST and answers it with ``status``."""

    def __init__(self, secret: str | None, status: int) -> None:
        self.secret, self.status = secret, status

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        line = describe(body, request.headers.get(HEADER, ""), self.secret, time.time())
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return web.Response(status=self.status, text="ok\n")

    async def serve(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        sys.stdout.write(f"listening on http://{host}:{port}/ (Ctrl-C stops)\n")
        sys.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def run_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    """``smslane webhooks listen``."""
    del settings  # the listener reads no setting
    listener = Listener(args.secret, args.status)
    try:
        asyncio.run(listener.serve(args.host, args.port))
    except KeyboardInterrupt:
        return 130
    return 0


def add_webhooks_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``smslane webhooks listen`` on the top-level sub-commands."""
    webhooks = sub.add_parser(
        "webhooks", help="see webhook deliveries locally", description=_DESCRIPTION
    )
    actions = webhooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    listen = actions.add_parser(
        "listen", help="print every webhook delivery received", description=_DESCRIPTION
    )
    listen.add_argument("--port", type=int, default=9009, help="port to listen on (9009)")
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    listen.add_argument("--secret", help="the endpoint's secret, to check the signatures")
    listen.add_argument(
        "--status",
        type=int,
        default=200,
        help="the status to answer with (200; 503 to see retries)",
    )
    listen.set_defaults(run=run_webhooks)
