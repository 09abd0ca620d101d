"""``smslane twilio-sim`` / ``python -m twilio_sim``: run the simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from twilio_sim.config import ConfigError, Scenario, SimConfig
from twilio_sim.simulator import TwilioSimulator

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8089

_DESCRIPTION = """\
A local stand-in for Twilio's Messages API (2010-04-01) and Lookup v2, with signed status
callbacks, for development and tests. Point SMSLANE_TWILIO_API_BASE_URL and
SMSLANE_TWILIO_LOOKUP_BASE_URL at the URL it prints on standard output when ready."""

_EPILOG = f"""\
magic 'To' numbers: +15005550001 (21211), +15005550002 (21612), +15005550003 (21408),
  +15005550004 (21610), +15005550009 (21614).
scenarios (config "scenarios": {{number: scenario}}, or --scenario for the default):
  {", ".join(s.value for s in Scenario)}.
lost callbacks: config "silent_numbers": [number, ...]: their messages move along their
  scenario (seen through fetch and list), and no status callback is ever sent.
inspection: GET /_sim/health, GET /_sim/stats, GET /_sim/messages[?to=],
  GET /_sim/messages/SID, GET|POST /_sim/config (POST merges a JSON object), POST /_sim/reset.
inbound: POST /_sim/inbound {"from", "to", "body"} sends the signed webhook to --inbound-url;
  STOP / START keywords unsubscribe / resubscribe the sender (later sends: 21610).

examples:
  smslane twilio-sim --account AC00000000000000000000000000000000:secret \\
      --service MG11111111111111111111111111111111:+14155550100,+12125550100
  smslane twilio-sim --config sim.json --port 0 --scenario out_of_order --callback-delay-ms 0
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of the simulator."""
    parser = argparse.ArgumentParser(
        prog="smslane twilio-sim",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to bind, 0 for a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="JSON file with SimConfig fields (accounts, services, scenarios, delays, ...)",
    )
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SID:TOKEN",
        help="an account the API accepts (HTTP basic auth); repeatable",
    )
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="MGSID:+1555...,+1555...",
        help="a Messaging Service and its sender pool (E.164, comma-separated); repeatable",
    )
    parser.add_argument(
        "--scenario",
        choices=[s.value for s in Scenario],
        help="default scenario of every destination not configured otherwise",
    )
    parser.add_argument(
        "--callback-delay-ms", type=float, metavar="MS", help="pause before each status callback"
    )
    parser.add_argument(
        "--create-accept-delay-ms",
        type=float,
        metavar="MS",
        help="pause before a create is recorded; a caller gone by then leaves no message",
    )
    parser.add_argument(
        "--sign-url-fragment",
        action="store_true",
        help="sign status callbacks over the StatusCallback with its #fragment",
    )
    parser.add_argument(
        "--inbound-url",
        metavar="URL",
        help="where POST /_sim/inbound sends its signed incoming-message webhook",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        metavar="N",
        help="send scheduled messages (and run out validity periods) N times sooner: demos",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    return parser


def _pair(text: str, what: str) -> tuple[str, str]:
    key, colon, value = text.partition(":")
    if not colon or not key or not value:
        raise ConfigError(f"{what} {text!r}: expected KEY:VALUE")
    return key, value


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The configuration the command line describes (file first, options merged over it)."""
    base: dict[str, Any] = {}
    if args.config is not None:
        try:
            base = orjson.loads(args.config.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"--config {args.config}: {exc}") from exc
        if not isinstance(base, dict):
            raise ConfigError(f"--config {args.config}: expected a JSON object")
    config = SimConfig.validated(base)
    patch: dict[str, Any] = {}
    if args.account:
        patch["accounts"] = dict(_pair(item, "--account") for item in args.account)
    if args.service:
        services = {}
        for item in args.service:
            sid, numbers = _pair(item, "--service")
            services[sid] = [n.strip() for n in numbers.split(",") if n.strip()]
        patch["services"] = services
    if args.scenario is not None:
        patch["default_scenario"] = args.scenario
    if args.callback_delay_ms is not None:
        patch["callback_delay_ms"] = args.callback_delay_ms
    if args.create_accept_delay_ms is not None:
        patch["create_accept_delay_ms"] = args.create_accept_delay_ms
    if args.sign_url_fragment:
        patch["sign_url_fragment"] = True
    if args.inbound_url:
        patch["inbound_url"] = args.inbound_url
    if args.time_scale is not None:
        patch["time_scale"] = args.time_scale
    return config.merged(patch)


async def serve(config: SimConfig, host: str, port: int) -> None:
    """Run the simulator until SIGINT or SIGTERM."""
    simulator = TwilioSimulator(config)
    url = await simulator.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    logger.info("Twilio simulator ready at %s (Ctrl-C to stop)", url)
    sys.stdout.write(url + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await simulator.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        sys.stderr.write(f"smslane twilio-sim: {exc}\n")
        return 2
    if not config.accounts:
        logger.warning("no account configured: every API call will answer 401")
    try:
        asyncio.run(serve(config, args.host, args.port))
    except OSError as exc:
        sys.stderr.write(f"smslane twilio-sim: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    return 0
