"""Inspection and configuration routes under ``/_sim/`` for black-box tests.

``GET /_sim/health``, ``GET /_sim/stats``, ``GET /_sim/messages[?to=]``,
``GET /_sim/messages/{sid}``, ``GET|POST /_sim/config`` (POST merges a JSON patch),
``POST /_sim/reset``, ``POST /_sim/inbound`` (a person texts a number: ``twilio_sim.inbound``),
``GET|POST /_sim/clock`` (the clock of scheduled sends: ``twilio_sim.scheduling``).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from twilio_sim.config import ConfigError
from twilio_sim.inbound import Inbound, InboundError
from twilio_sim.routes_api import STATE_KEY, json_response


def _problem(status: int, detail: str) -> web.Response:
    return json_response({"status": status, "detail": detail}, status)


async def health(request: web.Request) -> web.Response:
    """Liveness plus a few counters."""
    state = request.app[STATE_KEY]
    return json_response(
        {
            "status": "ok",
            "messages": len(state.store),
            "pending_callbacks": state.dispatcher.pending,
        }
    )


async def stats(request: web.Request) -> web.Response:
    """Create-call counters: ``creates_in_progress`` (held now), ``creates_received``,
    ``creates_dropped`` (caller gone during ``create_accept_delay_ms``)."""
    return json_response(request.app[STATE_KEY].creates.as_json())


async def list_messages(request: web.Request) -> web.Response:
    """Every remembered message, oldest first; ``?to=`` keeps those sent to one number."""
    state = request.app[STATE_KEY]
    messages = state.store.select(request.query.get("to"))
    return json_response({"messages": [message.as_json() for message in messages]})


async def get_message(request: web.Request) -> web.Response:
    """One message with its callbacks and their outcomes."""
    message = request.app[STATE_KEY].store.get(request.match_info["sid"])
    if message is None:
        return _problem(404, "no such message")
    return json_response(message.as_json())


async def get_config(request: web.Request) -> web.Response:
    """The configuration in force (auth tokens masked)."""
    return json_response(request.app[STATE_KEY].config.public_view())


async def post_config(request: web.Request) -> web.Response:
    """Merge a JSON object into the configuration; answers the configuration in force."""
    state = request.app[STATE_KEY]
    try:
        patch = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _problem(400, f"invalid JSON: {exc}")
    if not isinstance(patch, dict):
        return _problem(400, "the configuration patch must be a JSON object")
    try:
        config = state.configure(patch)
    except ConfigError as exc:
        return _problem(400, str(exc))
    return json_response(config.public_view())


async def reset(request: web.Request) -> web.Response:
    """Forget every message, sticky-sender mapping and create counter (the configuration
    stays)."""
    request.app[STATE_KEY].reset()
    return json_response({"status": "ok"})


async def clock(request: web.Request) -> web.Response:
    """``{"advance_s": seconds}`` moves the simulator's clock forward, then sends what became
    due; answers the clock (``GET`` too: ``now``, epoch seconds, and ``advanced_s``)."""
    state = request.app[STATE_KEY]
    if request.method == "POST":
        try:
            data = orjson.loads(await request.read())
            advance = float(data.get("advance_s", 0)) if isinstance(data, dict) else -1.0
        except (orjson.JSONDecodeError, TypeError, ValueError):
            advance = -1.0
        if advance < 0:
            return _problem(400, 'expected {"advance_s": seconds >= 0}')
        state.clock.advance(advance)
        await state.tick()
    return json_response({"now": state.clock.now(), "advanced_s": state.clock.advanced})


async def inbound(request: web.Request) -> web.Response:
    """A person texts ``{"from", "to", "body"}``: Advanced Opt-Out, then the signed webhook
    to ``inbound_url``; answers what was sent and the webhook's answer."""
    state = request.app[STATE_KEY]
    try:
        data = orjson.loads(await request.read())
        if not isinstance(data, dict):
            raise InboundError("the body must be a JSON object")
        message = Inbound.parse(data, state.config)
    except (orjson.JSONDecodeError, InboundError) as exc:
        return _problem(400, str(exc))
    return json_response(await state.receive_inbound(message))


def add_routes(app: web.Application) -> None:
    """Register the ``/_sim/`` routes."""
    app.router.add_get("/_sim/health", health)
    app.router.add_get("/_sim/stats", stats)
    app.router.add_get("/_sim/messages", list_messages)
    app.router.add_get("/_sim/messages/{sid}", get_message)
    app.router.add_get("/_sim/config", get_config)
    app.router.add_post("/_sim/config", post_config)
    app.router.add_post("/_sim/reset", reset)
    app.router.add_post("/_sim/inbound", inbound)
    app.router.add_get("/_sim/clock", clock)
    app.router.add_post("/_sim/clock", clock)
