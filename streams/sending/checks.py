"""The checks of ``POST /v1/sms/`` that run before Twilio is called, as pure functions.

The contract fixes their order; the first failing check answers. The line-type Lookup is I/O,
so the checks are split around it and the caller runs them in this sequence::

    error = check_use_case(use_case, senders)          # use case, pool, A2P campaign
    dest = parse_destination(to_phone_number)          # a valid number, and its region
    line_type = <Lookup of dest.e164, unless disabled>
    error = check_destination(dest, line_type, opted_out, use_case, brand)

Each function returns the first failure as an error *instance* whose ``detail`` tells a person
what is wrong and, where it helps, what to do about it; ``None`` means the step passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from schemas.config import A2pCampaignStatus, Brand, BrandStatus, NumberType, SenderNumber, UseCase
from schemas.errors import (
    A2pCampaignNotVerified,
    BrandSuspended,
    DestinationOptedOut,
    InvalidDestination,
    InvalidSendAt,
    NoSenderNumbers,
    RegionNotPermitted,
    SmslaneError,
    UseCaseInactive,
    UseCaseNotFound,
)

#: Twilio's magic test numbers +15005550000 … +15005550009 (used with test credentials to
#: provoke Twilio's error answers, e.g. +15005550001 gives 21211 and +15005550009 gives 21614).
TWILIO_TEST_NUMBERS: frozenset[str] = frozenset(f"+1500555000{digit}" for digit in range(10))

#: Twilio REST error codes on message creation that mean one of our send errors.
_TWILIO_ERRORS: dict[int, type[SmslaneError]] = {
    21211: InvalidDestination,  # invalid 'To' phone number
    21614: InvalidDestination,  # 'To' number is not a valid mobile number
    21610: DestinationOptedOut,  # the recipient replied STOP
    21408: RegionNotPermitted,  # no permission to send to this region
    35111: InvalidSendAt,  # ScheduleType not supported
    35114: InvalidSendAt,  # SendAt outside Twilio's window, or not a timestamp it reads
}

_TWILIO_ERROR_DETAILS: dict[int, str] = {
    21211: "Twilio rejected the destination as an invalid phone number (Twilio error 21211).",
    21614: "Twilio reports the destination cannot receive SMS (Twilio error 21614).",
    21610: "The destination has unsubscribed from this sender by replying STOP (Twilio error "
    "21610).",
    21408: "The messaging service has no permission to send to the destination's region "
    "(Twilio error 21408).",
    35111: "Twilio refused to schedule the message (Twilio error 35111).",
    35114: "Twilio refused send_at: it must be between 15 minutes and 35 days from now "
    "(Twilio error 35114).",
}


@dataclass(frozen=True)
class Destination:
    """A destination number that passed the validity check.

    ``e164`` is the normalized number; ``region`` its ISO 3166 alpha-2 region, or ``None`` for
    numbers that belong to no region (international freephone, satellite services).
    """

    e164: str
    region: str | None


def _region_of(number: str) -> str | None:
    """The ISO alpha-2 region of an E.164 number, or ``None`` when it has none or is invalid."""
    if number in TWILIO_TEST_NUMBERS:
        return "US"
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if region in (None, phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY):
        return None
    return str(region)


def _regions(codes: Sequence[str]) -> str:
    return ", ".join(codes) if codes else "none"


def check_use_case(
    use_case: UseCase | None, senders: Sequence[SenderNumber]
) -> SmslaneError | None:
    """Checks 1-4 of a send: the use case exists and is active, and its pool can send.

    ``senders`` is the use case's sender pool. A sender counts as a US long code when its type is
    ``long_code`` and ``phonenumbers`` places it in region ``US`` (Twilio's test numbers count as
    US too); such a pool needs an A2P 10DLC campaign whose status is ``verified``.
    """
    if use_case is None or use_case.deleted:
        return UseCaseNotFound()
    if not use_case.active:
        return UseCaseInactive(
            f"SMS use case '{use_case.name}' ({use_case.id}) is not active; activate it with "
            f"PATCH /v1/admin/sms-use-cases/{use_case.id} before sending."
        )
    if not senders:
        return NoSenderNumbers(
            f"SMS use case '{use_case.name}' has no phone number in its sender pool; assign one "
            f"with PUT /v1/admin/sms-use-cases/{use_case.id}/phone-numbers/{{phone_number}}."
        )
    if use_case.a2p_campaign_status is not A2pCampaignStatus.VERIFIED:
        us_long_codes = sorted(
            sender.phone_number
            for sender in senders
            if sender.number_type is NumberType.LONG_CODE
            and _region_of(sender.phone_number) == "US"
        )
        if us_long_codes:
            return A2pCampaignNotVerified(
                f"The sender pool of SMS use case '{use_case.name}' holds the US long code "
                f"{us_long_codes[0]}, which needs a verified A2P 10DLC campaign; the use case's "
                f"campaign status is '{use_case.a2p_campaign_status}'."
            )
    return None


def parse_destination(
    number: str, *, allow_test_numbers: bool = True
) -> Destination | SmslaneError:
    """Check that ``number`` is a valid phone number and find its region.

    Validity and region come from the number itself (``phonenumbers``), so they hold even with
    the Lookup call switched off. With ``allow_test_numbers`` (the default), Twilio's magic test
    numbers +15005550000 … +15005550009 are always accepted as US numbers: tests and the
    simulator send to them to make Twilio answer with its error codes (21211, 21614, 21610,
    21408), and that path must not depend on the phone-number metadata shipped with
    ``phonenumbers``, which is free to reclassify area code 500 (today it accepts them as US
    personal numbers). With ``allow_test_numbers=False``, ``phonenumbers`` alone decides.
    """
    if allow_test_numbers and number in TWILIO_TEST_NUMBERS:
        return Destination(e164=number, region="US")
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return InvalidDestination(
            f"'{number}' is not a phone number in E.164 format, such as +14155552671."
        )
    if not phonenumbers.is_valid_number(parsed):
        return InvalidDestination(f"{number} is not a valid phone number.")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return Destination(e164=e164, region=_region_of(e164))


def check_destination(
    dest: Destination,
    line_type: str | None,
    opted_out: bool,
    use_case: UseCase,
    brand: Brand | None,
) -> SmslaneError | None:
    """Checks 5-8 of a send, after the Lookup: line type, opt-out, region, brand.

    ``line_type`` is Lookup's ``line_type_intelligence.type`` (``None`` when Lookup is off or
    did not say); only ``landline`` fails. ``opted_out`` tells whether ``dest.e164`` opted out of
    ``use_case``. Region codes compare case-insensitively; a number with no region is never
    permitted. ``brand`` is the use case's brand; only a brand smslane knows to be suspended
    blocks the send. A missing brand (never registered with smslane) does not: the contract
    names no error for it, reporting it as ``brand_suspended`` would be false, and an
    unregistered brand is still held back where it matters, by the A2P campaign check and by
    Twilio itself. The caller may log it.
    """
    if line_type is not None and line_type.strip().lower() == "landline":
        return InvalidDestination(f"{dest.e164} is a landline and cannot receive SMS.")
    if opted_out:
        return DestinationOptedOut(
            f"{dest.e164} has opted out of messages from SMS use case '{use_case.name}'."
        )
    permitted = tuple(region.upper() for region in use_case.permitted_regions)
    if dest.region is None:
        return RegionNotPermitted(
            f"Destination {dest.e164} belongs to no country or region, so it cannot be permitted "
            f"for this use case (permitted: {_regions(permitted)})."
        )
    if dest.region.upper() not in permitted:
        return RegionNotPermitted(
            f"Destination region '{dest.region}' is not permitted for this use case "
            f"(permitted: {_regions(permitted)})."
        )
    if brand is not None and brand.status is BrandStatus.SUSPENDED:
        return BrandSuspended(
            f"Brand '{brand.name}' ({brand.brand_id}) behind SMS use case '{use_case.name}' is "
            f"suspended; messages cannot be sent until its registration is restored."
        )
    return None


def error_for_twilio_code(code: int | None) -> type[SmslaneError] | None:
    """The send error a Twilio REST error code means, or ``None`` when it maps to none.

    21211 and 21614 mean ``invalid_destination``, 21610 ``destination_opted_out`` (the caller
    also records the opt-out) and 21408 ``region_not_permitted``.
    """
    if code is None:
        return None
    return _TWILIO_ERRORS.get(code)


def error_from_twilio_code(code: int | None) -> SmslaneError | None:
    """Like :func:`error_for_twilio_code`, but an instance whose detail names the Twilio error."""
    error_class = error_for_twilio_code(code)
    if error_class is None or code is None:
        return None
    return error_class(_TWILIO_ERROR_DETAILS[code])
