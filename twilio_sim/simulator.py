"""``TwilioSimulator``: the simulator as an object tests start, inspect and stop in-process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from twilio_sim import routes_api, routes_sim
from twilio_sim.config import SimConfig
from twilio_sim.models import SimMessage
from twilio_sim.scheduling import SimClock
from twilio_sim.state import SimState

logger = logging.getLogger(__name__)

#: How often due scheduled messages and expired validity periods are looked for (real s).
TICK_S = 0.2


def build_app(state: SimState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application()
    app[routes_api.STATE_KEY] = state
    routes_sim.add_routes(app)
    routes_api.add_routes(app)
    return app


class TwilioSimulator:
    """A local stand-in for Twilio's Messages and Lookup APIs.

    Use it as ``async with TwilioSimulator(config) as sim:`` or call :meth:`start` and
    :meth:`stop`. Point twilio's client at :attr:`base_url` for both the API and Lookups.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self._state = SimState(config or SimConfig())
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def config(self) -> SimConfig:
        """The configuration in force."""
        return self._state.config

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` once started."""
        if self._base_url is None:
            raise RuntimeError("the simulator is not started")
        return self._base_url

    @property
    def messages(self) -> list[SimMessage]:
        """Every remembered message, in creation order."""
        return self._state.store.select()

    def messages_to(self, to: str) -> list[SimMessage]:
        """The messages sent to ``to``, in creation order."""
        return self._state.store.select(to)

    def message(self, sid: str) -> SimMessage | None:
        """The message with ``sid``."""
        return self._state.store.get(sid)

    def stats(self) -> dict[str, int]:
        """The create-call counters, as ``GET /_sim/stats`` answers them."""
        return self._state.creates.as_json()

    def configure(self, patch: Mapping[str, Any] | None = None, **changes: Any) -> SimConfig:
        """Merge ``patch`` and ``changes`` into the configuration, like ``POST /_sim/config``."""
        return self._state.configure({**(patch or {}), **changes})

    def reset(self) -> None:
        """Forget every message, sticky-sender mapping and create counter, like
        ``POST /_sim/reset``."""
        self._state.reset()

    async def wait_idle(self) -> None:
        """Wait until every pending status callback was sent (or given up on); bound it
        with ``async with asyncio.timeout(...)`` if need be."""
        await self._state.dispatcher.wait_idle()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); returns :attr:`base_url`."""
        if self._runner is not None:
            return self.base_url
        await self._state.dispatcher.open()
        runner = web.AppRunner(
            build_app(self._state),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
            handler_cancellation=False,  # a create outlives its caller, as on Twilio's side
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._state.dispatcher.close()
            raise
        self._runner = runner
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{url_host}:{bound_port}"
        logger.info("Twilio simulator listening on %s", self._base_url)
        return self._base_url

    async def stop(self) -> None:
        """Cancel pending callbacks and stop serving."""
        runner, self._runner = self._runner, None
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        if runner is not None:
            await runner.cleanup()
        await self._state.dispatcher.close()
        if runner is not None:
            logger.info("Twilio simulator on %s stopped", self._base_url)
        self._base_url = None

    @property
    def clock(self) -> SimClock:
        """The clock of scheduled sends and validity periods (tests move it forward)."""
        return self._state.clock

    async def advance(self, seconds: float) -> None:
        """Move the clock forward and send what became due, like ``POST /_sim/clock``."""
        self._state.clock.advance(seconds)
        await self._state.tick()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._state.tick()
            except Exception:
                logger.exception("scheduled sends: tick failed")

    async def __aenter__(self) -> TwilioSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
