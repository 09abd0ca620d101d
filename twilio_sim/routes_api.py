"""The Twilio API routes: Messages (create, list, fetch) and Lookup v2, plus Twilio-shaped 404s.

Handlers stay thin: authenticate, read the request, call :class:`SimState`, answer.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from twilio_sim import errors
from twilio_sim.errors import TwilioError
from twilio_sim.lookup import lookup
from twilio_sim.models import API_VERSION
from twilio_sim.state import SimState

STATE_KEY = web.AppKey("twilio_sim_state", SimState)
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Basic realm="Twilio API"'}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer serialised with orjson."""
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def error_response(error: TwilioError) -> web.Response:
    """Twilio's error body with its HTTP status."""
    headers = _UNAUTHORIZED_HEADERS if error.status == 401 else None
    return json_response(error.body(), error.status, headers)


def _account(request: web.Request, state: SimState) -> str | None:
    account_sid = state.authenticate(request.headers.get("Authorization"))
    path_sid = request.match_info.get("account_sid")
    if account_sid is None or (path_sid is not None and path_sid != account_sid):
        return None
    return account_sid


def _caller_gone(request: web.Request) -> bool:
    """Whether the client closed its connection (aiohttp does not cancel the handler)."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def create_message(request: web.Request) -> web.Response:
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``."""
    state = request.app[STATE_KEY]
    account_sid = _account(request, state)
    if account_sid is None:
        return error_response(errors.AUTHENTICATE)
    post = await request.post()
    form = {key: value for key, value in post.items() if isinstance(value, str)}
    if "MediaUrl" in post:
        form.setdefault("MediaUrl", "")
    outcome = await state.receive_create(account_sid, form, lambda: _caller_gone(request))
    if outcome is None:  # nobody is left to read it
        return web.Response(status=499)
    status, body = outcome
    return json_response(body, status)


async def list_messages(request: web.Request) -> web.Response:
    """``GET /2010-04-01/Accounts/{AccountSid}/Messages.json``: a page, newest first."""
    state = request.app[STATE_KEY]
    account_sid = _account(request, state)
    if account_sid is None:
        return error_response(errors.AUTHENTICATE)
    status, body = state.list_messages(account_sid, request.query)
    return json_response(body, status)


async def fetch_message(request: web.Request) -> web.Response:
    """``GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``."""
    state = request.app[STATE_KEY]
    account_sid = _account(request, state)
    if account_sid is None:
        return error_response(errors.AUTHENTICATE)
    message = state.store.get(request.match_info["sid"])
    if message is None or message.account_sid != account_sid:
        return error_response(errors.not_found(request.path))
    return json_response(message.resource())


async def update_message(request: web.Request) -> web.Response:
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``: ``Status=canceled``
    cancels a scheduled message (the only update modelled)."""
    state = request.app[STATE_KEY]
    account_sid = _account(request, state)
    if account_sid is None:
        return error_response(errors.AUTHENTICATE)
    post = await request.post()
    if post.get("Status") != "canceled":
        return error_response(TwilioError(400, 21211, "Only Status=canceled is supported."))
    status, body = state.cancel(account_sid, request.match_info["sid"])
    return json_response(body, status)


async def lookup_number(request: web.Request) -> web.Response:
    """``GET /v2/PhoneNumbers/{PhoneNumber}`` (Lookup v2)."""
    state = request.app[STATE_KEY]
    if _account(request, state) is None:
        return error_response(errors.AUTHENTICATE)
    answer = lookup(
        state.config,
        request.match_info["number"],
        fields=request.query.get("Fields", ""),
        country=request.query.get("CountryCode"),
        base_url=str(request.url.origin()),
    )
    return json_response(answer)


async def not_found(request: web.Request) -> web.Response:
    """Any other path: Twilio's 20404 body."""
    return error_response(errors.not_found(request.path))


def add_routes(app: web.Application) -> None:
    """Register the Twilio API routes; call last, as its catch-all route answers 404."""
    accounts = f"/{API_VERSION}/Accounts/{{account_sid}}"
    app.router.add_post(f"{accounts}/Messages.json", create_message)
    app.router.add_get(f"{accounts}/Messages.json", list_messages)
    app.router.add_get(f"{accounts}/Messages/{{sid}}.json", fetch_message)
    app.router.add_post(f"{accounts}/Messages/{{sid}}.json", update_message)
    app.router.add_get("/v2/PhoneNumbers/{number}", lookup_number)
    app.router.add_route("*", "/{tail:.*}", not_found)
