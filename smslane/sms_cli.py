"""``smslane sms send | get | cancel | tail``: the operator's client of a running smslane.

``send``, ``get`` and ``cancel`` call the ingress's HTTP API, as any client does; ``tail``
follows the ``sms.status`` topic as a downstream consumer does (:mod:`smslane.sms_tail`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import httpx

from schemas.settings import Settings

#: Seconds to wait for an answer: the ingress itself gives up on the worker after
#: SMSLANE_SEND_TIMEOUT_SECONDS (10 s by default) and answers 504.
HTTP_TIMEOUT_S = 60.0

_SMS_DESCRIPTION = """\
Send and read SMS through a running ingress, and follow their status changes on Kafka."""

_CLIENT_HELP = """\
the ingress: --url, else SMSLANE_PUBLIC_BASE_URL (default http://127.0.0.1:8000).
the API key: --api-key, else SMSLANE_API_KEY, else the first key of SMSLANE_API_KEYS.
An error answer is printed on standard error as `code: detail` (e.g. `use_case_not_found:
No SMS use case with this id exists...`). Exit status: 0 done, 1 an error answer or no
answer from the ingress, 2 a bad command line."""

_SEND_DESCRIPTION = f"""\
Send one SMS (POST /v1/sms/) and print its record, as JSON, on standard output. A new
record is `pending` (`scheduled` with --send-at); `smslane sms get ID` or `smslane sms tail`
show what follows.

{_CLIENT_HELP}"""

_GET_DESCRIPTION = f"""\
Print one SMS record (GET /v1/sms/ID), as JSON, on standard output.

{_CLIENT_HELP}"""

_CANCEL_DESCRIPTION = f"""\
Cancel a message sent with --send-at that Twilio has not sent yet (POST /v1/sms/ID/cancel)
and print its record, now `canceled`. A message no longer scheduled answers
`not_cancelable`; canceling a canceled message again prints it again.

{_CLIENT_HELP}"""

_TAIL_DESCRIPTION = """\
Follow the Kafka topic sms.status (SMSLANE_TOPIC_PREFIX + sms.status, at
SMSLANE_KAFKA_BOOTSTRAP_SERVERS) and print one line per change of a record's status:

  TIME (the record's updated_at)  ID  STATUS  TO  ERROR_CODE (- when none)

from the changes published from now on, or with --from-beginning from the oldest value the
topic keeps (compaction keeps every change of the last 24 hours and the latest of every
record). A value whose version is not newer than the last one read for its record is a
redelivery and is dropped; a newer version with the same status (the sender number filled
in, say) prints no line. It reads every partition without a consumer group and
commits nothing, so it never disturbs other consumers. Ctrl-C stops it (exit status 0);
exit status 1 when Kafka does not answer or the topic does not exist."""


class ClientError(Exception):
    """What ``smslane sms`` prints on standard error before exiting with status 1."""


@dataclass(frozen=True)
class Ingress:
    """Where the API is and the key to call it with."""

    url: str
    api_key: str


def ingress_of(settings: Settings, url: str | None, api_key: str | None) -> Ingress:
    """``--url`` / ``--api-key`` first, then the environment; no key at all is an error."""
    key = api_key or os.environ.get("SMSLANE_API_KEY") or next(iter(settings.api_keys), None)
    if not key:
        raise ClientError(
            "no API key: pass --api-key, or set SMSLANE_API_KEY (or SMSLANE_API_KEYS)"
        )
    return Ingress((url or settings.public_base_url).rstrip("/"), key)


def error_line(answer: httpx.Response) -> str:
    """``code: detail`` of an error answer (``http_<status>: body`` when it is not ours),
    and when to retry if the answer says (``Retry-After``)."""
    retry = answer.headers.get("Retry-After")
    after = f" (retry after {retry} s)" if retry else ""
    try:
        body = answer.json()
        return f"{body['code']}: {body['detail']}{after}"
    except (ValueError, KeyError, TypeError):
        return f"http_{answer.status_code}: {answer.text.strip()[:200]}{after}"


def call(ingress: Ingress, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """The JSON body of a 2xx answer; any other answer or no answer raises ClientError."""
    headers = {"Authorization": f"Bearer {ingress.api_key}", **kwargs.pop("headers", {})}
    try:
        answer = httpx.request(
            method, ingress.url + path, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs
        )
    except httpx.HTTPError as exc:
        raise ClientError(f"no answer from the ingress at {ingress.url}: {exc}") from None
    if not answer.is_success:
        raise ClientError(error_line(answer))
    body: dict[str, Any] = answer.json()
    return body


def _print_record(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, indent=2) + "\n")


def _send(settings: Settings, args: argparse.Namespace) -> int:
    ingress = ingress_of(settings, args.url, args.api_key)
    body = {"use_case_id": args.use_case, "to_phone_number": args.to, "message": args.message}
    optional = {
        "send_at": args.send_at,
        "validity_period": args.validity_period,
        "client_reference": args.client_reference,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    _print_record(call(ingress, "POST", "/v1/sms/", json=body, headers=headers))
    return 0


def _get(settings: Settings, args: argparse.Namespace) -> int:
    ingress = ingress_of(settings, args.url, args.api_key)
    _print_record(call(ingress, "GET", f"/v1/sms/{args.id}"))
    return 0


def _cancel(settings: Settings, args: argparse.Namespace) -> int:
    ingress = ingress_of(settings, args.url, args.api_key)
    _print_record(call(ingress, "POST", f"/v1/sms/{args.id}/cancel"))
    return 0


def _tail(settings: Settings, args: argparse.Namespace) -> int:
    from feeds.kafka_check import require_connection_settings
    from smslane.sms_tail import run_tail

    require_connection_settings(settings)
    return run_tail(settings, from_beginning=args.from_beginning)


def run_sms(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ``smslane sms`` action; a ClientError becomes its line and exit status 1."""
    try:
        code: int = args.action_run(settings, args)
    except ClientError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return code


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", metavar="URL", help="base URL of the ingress (default: SMSLANE_PUBLIC_BASE_URL)"
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="bearer key (default: SMSLANE_API_KEY, else the first of SMSLANE_API_KEYS); "
        "prefer the variable: other users of the machine can read command lines",
    )


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str, doc: str
) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name, help=text, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return parser


def add_sms_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``smslane sms`` and its actions on the top-level sub-commands."""
    sms = sub.add_parser(
        "sms",
        help="send and read SMS through the API; follow their status changes",
        description=_SMS_DESCRIPTION,
    )
    sms.set_defaults(run=run_sms)
    actions = sms.add_subparsers(dest="action", required=True, metavar="ACTION")

    send = _action(actions, "send", "send one SMS and print its record", _SEND_DESCRIPTION)
    send.add_argument("--use-case", required=True, metavar="ID", help="the use case's id")
    send.add_argument("--to", required=True, metavar="E164", help="destination, e.g. +14155550123")
    send.add_argument("--message", required=True, metavar="TEXT", help="1 to 1600 characters")
    send.add_argument(
        "--idempotency-key",
        metavar="K",
        help="the Idempotency-Key header: sending again with the same key and body answers "
        "the same record and never sends twice",
    )
    send.add_argument(
        "--send-at",
        metavar="TIME",
        help="send later: an RFC 3339 time with its UTC offset, 15 minutes to 35 days ahead "
        "(e.g. 2026-12-24T09:00:00Z)",
    )
    send.add_argument(
        "--validity-period",
        type=int,
        metavar="SECONDS",
        help="1 to 36000: a message still queued at Twilio after this long fails instead",
    )
    send.add_argument(
        "--client-reference", metavar="REF", help="your own reference, 1 to 128 characters"
    )
    _client_options(send)
    send.set_defaults(action_run=_send)

    cancel = _action(actions, "cancel", "cancel a scheduled SMS", _CANCEL_DESCRIPTION)
    cancel.add_argument("id", metavar="ID", help="the record's id")
    _client_options(cancel)
    cancel.set_defaults(action_run=_cancel)

    get = _action(actions, "get", "print one SMS record", _GET_DESCRIPTION)
    get.add_argument("id", metavar="ID", help="the record's id (the `id` send printed)")
    _client_options(get)
    get.set_defaults(action_run=_get)

    tail = _action(
        actions, "tail", "print each status change on sms.status as it happens", _TAIL_DESCRIPTION
    )
    tail.add_argument(
        "--from-beginning",
        action="store_true",
        help="start from the oldest value the topic keeps instead of from now",
    )
    tail.set_defaults(action_run=_tail)
