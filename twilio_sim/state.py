"""The simulator's state and the operations its HTTP routes (and tests) perform on it."""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twilio_sim import errors
from twilio_sim.callbacks import CallbackDispatcher, Target, parse_target
from twilio_sim.config import SimConfig
from twilio_sim.errors import TwilioError, server_error
from twilio_sim.inbound import Inbound, opt_out_type, post_webhook
from twilio_sim.listing import parse_query, render_page, select_page
from twilio_sim.messaging import MessageStore, accept
from twilio_sim.models import API_VERSION, SimMessage
from twilio_sim.scenarios import Step, plan_for
from twilio_sim.scheduling import (
    VALIDITY_EXPIRED_CODE,
    SimClock,
    due_at,
    not_cancelable,
    parse_schedule,
    parse_validity,
)
from twilio_sim.senders import SenderSelector

logger = logging.getLogger(__name__)

_AUTH_CACHE_SIZE = 1024


@dataclass(slots=True)
class CreateCounters:
    """What became of the create calls (authenticated ones) since start or the last reset."""

    in_progress: int = 0
    """Create calls the simulator holds now (in either delay, or being handled)."""
    received: int = 0
    dropped: int = 0
    """Create calls whose caller disconnected during ``create_accept_delay_ms``: no message."""

    def clear(self) -> None:
        """Zero ``received`` and ``dropped``; ``in_progress`` still counts the held calls."""
        self.received = 0
        self.dropped = 0

    def as_json(self) -> dict[str, int]:
        """The ``GET /_sim/stats`` view."""
        return {
            "creates_in_progress": self.in_progress,
            "creates_received": self.received,
            "creates_dropped": self.dropped,
        }


class SimState:
    """Configuration, created messages, sender selection and the callback dispatcher."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.selector = SenderSelector(config.services)
        self.store = MessageStore(config.max_stored_messages)
        self.dispatcher = CallbackDispatcher(config)
        self.creates = CreateCounters()
        #: (Messaging Service, person) pairs unsubscribed by an opt-out keyword (21610).
        self.unsubscribed: set[tuple[str, str]] = set()
        self._auth_cache: dict[str, str] = {}
        self.clock = SimClock()
        #: Scheduled messages by SID, until they are sent or canceled.
        self.scheduled: dict[str, SimMessage] = {}
        #: Messages held ``queued`` (``queued_numbers``) by SID.
        self.held: dict[str, SimMessage] = {}

    def apply(self, config: SimConfig) -> None:
        """Replace the whole configuration."""
        self.config = config
        self.selector.configure(config.services)
        self.store.limit = config.max_stored_messages
        self.dispatcher.configure(config)
        self._auth_cache.clear()
        logger.info(
            "configuration: %d account(s), %d service(s), default scenario %s",
            len(config.accounts),
            len(config.services),
            config.default_scenario.value,
        )

    def configure(self, patch: Mapping[str, Any]) -> SimConfig:
        """Merge ``patch`` into the configuration (see :meth:`SimConfig.merged`)."""
        self.apply(self.config.merged(patch))
        return self.config

    def reset(self) -> None:
        """Forget every message, every sticky-sender mapping, every opt-out and the create
        counters (but the calls still held: ``in_progress`` keeps counting them)."""
        self.unsubscribed.clear()
        self.scheduled.clear()
        self.held.clear()
        self.store.clear()
        self.selector.forget()
        self.creates.clear()

    async def receive_create(
        self, account_sid: str, form: Mapping[str, str], caller_gone: Callable[[], bool]
    ) -> tuple[int, dict[str, Any]] | None:
        """A create call as the caller sees it: held ``create_accept_delay_ms`` before it is
        recorded, ``create_delay_ms`` after. ``None`` when the caller disconnected during the
        first pause: the message is not created, as Twilio never got the call."""
        config = self.config
        counters = self.creates
        counters.received += 1
        counters.in_progress += 1
        try:
            if config.create_accept_delay_ms:
                await asyncio.sleep(config.create_accept_delay_ms / 1000.0)
                if caller_gone():
                    counters.dropped += 1
                    logger.info(
                        "create call to %s dropped: the caller disconnected before it was "
                        "accepted, no message created",
                        form.get("To", "?"),
                    )
                    return None
            status, body = await self.create_message(account_sid, form)
            if config.create_delay_ms:  # a slow Twilio: created, answer still on its way
                await asyncio.sleep(config.create_delay_ms / 1000.0)
                if caller_gone():
                    logger.info(
                        "message %s created, but its caller disconnected before the answer",
                        body.get("sid", "?"),
                    )
            return status, body
        finally:
            counters.in_progress -= 1

    def authenticate(self, header: str | None) -> str | None:
        """The account SID an ``Authorization: Basic`` header proves, or ``None``."""
        if not header:
            return None
        known = self._auth_cache.get(header)
        if known is not None:
            return known
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        token = self.config.accounts.get(user)
        if not colon or token is None:
            return None
        if not hmac.compare_digest(token.encode(), password.encode()):
            return None
        if len(self._auth_cache) >= _AUTH_CACHE_SIZE:
            self._auth_cache.clear()
        self._auth_cache[header] = user
        return user

    async def create_message(
        self, account_sid: str, form: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """Handle a create call: the HTTP status and JSON body to answer with.

        A message with a StatusCallback moves along its scenario as its callbacks go out;
        one to a ``silent_numbers`` destination moves along it the same way, sending nothing;
        any other (or one in the ``none`` scenario) takes its final status at once.
        """
        now = time.time()
        config = self.config
        failing = config.create_errors.get(form.get("To", "").strip())
        if failing is not None:
            logger.info("create call to %s answered %d (create_errors)", form.get("To"), failing)
            refusal = server_error(failing)
            return refusal.status, refusal.body()
        clock_now = self.clock.now()
        send_at = parse_schedule(form, clock_now)
        validity = parse_validity(form)
        outcome = accept(config, self.selector, account_sid, form, now, self.unsubscribed)
        for error in (send_at, validity, outcome):
            if isinstance(error, TwilioError):
                return error.status, error.body()
        assert isinstance(outcome, SimMessage)
        message = outcome
        message.validity_period = validity if isinstance(validity, int) else None
        self.store.add(message)
        if isinstance(send_at, float):
            message.status, message.send_at = "scheduled", send_at
            message.due_at = due_at(clock_now, send_at - clock_now, config.time_scale)
            self.scheduled[message.sid] = message
            return 201, message.resource()
        answer = message.resource()
        await self._start(message)
        return 201, answer

    async def _start(self, message: SimMessage) -> None:
        """Move a created (or a scheduled, now due) message along its scenario."""
        config, now = self.config, time.time()
        if message.to in config.queued_numbers:
            self._hold(message)
            return
        plan = plan_for(
            message.scenario,
            undelivered_code=config.undelivered_error_code,
            failed_code=config.failed_error_code,
        )
        callback = message.status_callback
        silent = message.to in config.silent_numbers
        if not plan.steps or (callback is None and not silent):
            message.advance(plan.final_status, plan.final_error_code, now)
            return
        delay = config.delay_for(message.scenario)
        target = self._target(message)
        if silent or target is None:
            url = callback.partition("#")[0] if callback is not None else None
            self.dispatcher.withhold(message, plan.steps, url, delay)
            return
        steps = plan.steps
        if plan.early:
            await self.dispatcher.send(message, steps[0], target)
            steps = steps[1:]
        self.dispatcher.dispatch(message, steps, target, delay)

    def _target(self, message: SimMessage) -> Target | None:
        """Where the message's callbacks go (None: nowhere)."""
        if message.status_callback is None:
            return None
        config = self.config
        return parse_target(
            message.status_callback,
            config.accounts.get(message.account_sid, ""),
            config.callback_retries,
            config.sign_url_fragment,
        )

    def _hold(self, message: SimMessage) -> None:
        """Queue a message that does not leave the queue (``queued_numbers``)."""
        if message.validity_period is not None:
            now, scale = self.clock.now(), self.config.time_scale
            message.due_at = due_at(now, message.validity_period, scale)
        self.held[message.sid] = message
        self._notify(message, Step("queued"))

    def _notify(self, message: SimMessage, step: Step) -> None:
        """Move ``message`` to ``step`` and call back about it (when it has a callback)."""
        target = self._target(message)
        if target is None or message.to in self.config.silent_numbers:
            message.advance(step.status, step.error_code, time.time())
            return
        self.dispatcher.dispatch(message, (step,), target, 0.0)

    async def tick(self) -> None:
        """Send the scheduled messages now due and fail the held ones past their validity
        period, by the simulator's clock."""
        now = self.clock.now()
        for message in [m for m in self.scheduled.values() if (m.due_at or 0) <= now]:
            del self.scheduled[message.sid]
            message.status = "accepted"
            await self._start(message)
        for message in [m for m in self.held.values() if m.due_at is not None]:
            if message.due_at is not None and message.due_at <= now:
                del self.held[message.sid]
                self._notify(message, Step("failed", VALIDITY_EXPIRED_CODE))

    def cancel(self, account_sid: str, sid: str) -> tuple[int, dict[str, Any]]:
        """``Status=canceled`` on the Messages update call: only a scheduled message."""
        message = self.store.get(sid)
        if message is None or message.account_sid != account_sid:
            error = errors.not_found(f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json")
            return error.status, error.body()
        if message.status != "scheduled":
            error = not_cancelable(sid)
            return error.status, error.body()
        self.scheduled.pop(sid, None)
        message.status, message.updated = "canceled", time.time()
        self._notify(message, Step("canceled"))
        return 200, message.resource()

    async def receive_inbound(self, inbound: Inbound) -> dict[str, Any]:
        """A person texts ``inbound``: apply Advanced Opt-Out, then call the webhook."""
        config = self.config
        kind = opt_out_type(inbound.body) if config.advanced_opt_out else None
        pair = (inbound.service_sid or "", inbound.from_)
        if kind == "STOP" and inbound.service_sid is not None:
            self.unsubscribed.add(pair)
        elif kind == "START":
            self.unsubscribed.discard(pair)
        form = inbound.form(kind)
        webhook = None
        if config.inbound_url:
            token = config.accounts[inbound.account_sid]
            webhook = await post_webhook(config.inbound_url, token, form)
        return {
            "message_sid": form["MessageSid"],
            "opt_out_type": kind,
            "unsubscribed": pair in self.unsubscribed,
            "form": form,
            "webhook": webhook,
        }

    def list_messages(
        self, account_sid: str, params: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """Handle a list call: the HTTP status and JSON body (a page, newest first)."""
        query = parse_query(params)
        if isinstance(query, TwilioError):
            return query.status, query.body()
        anchor_seq = None
        if query.token is not None:
            anchor = self.store.get(query.token[2:])
            anchor_seq = anchor.seq if anchor is not None else -1
        page = select_page(self.store.select(), account_sid, query, anchor_seq)
        path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        return 200, render_page(path, query, page)
