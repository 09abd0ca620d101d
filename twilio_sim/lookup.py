"""Lookup v2 ``PhoneNumbers`` answers, shaped as Twilio documents them.

Validity, country and national format come from ``phonenumbers``; the line type comes from the
simulator's configuration (``landline_numbers``, ``voip_numbers``; everything else is mobile),
and ``invalid_numbers`` turns an otherwise valid number invalid.
"""

from __future__ import annotations

import functools
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from twilio_sim.config import SimConfig

_REASONS = {
    ValidationResult.TOO_SHORT: "TOO_SHORT",
    ValidationResult.TOO_LONG: "TOO_LONG",
    ValidationResult.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
    ValidationResult.INVALID_LENGTH: "INVALID_LENGTH",
}

_CARRIERS: dict[str, tuple[str, str | None, str | None]] = {
    "mobile": ("T-Mobile USA, Inc.", "310", "260"),
    "landline": ("Level 3 Communications, LLC", None, None),
    "nonFixedVoip": ("Twilio - SMS/MMS-SVR", "311", "950"),
}

_PACKAGES = (
    "caller_name",
    "sim_swap",
    "call_forwarding",
    "live_activity",
    "line_type_intelligence",
    "identity_match",
    "reassigned_number",
    "sms_pumping_risk",
    "phone_number_quality_score",
)


@functools.lru_cache(maxsize=4096)
def parse_number(raw: str, country: str | None) -> dict[str, Any]:
    """The basic (free) Lookup fields of ``raw``, read in ``country`` when it is national."""
    try:
        parsed = phonenumbers.parse(raw, (country or "US").upper())
    except NumberParseException as exc:
        reason = (
            "INVALID_COUNTRY_CODE"
            if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE
            else "NOT_A_NUMBER"
        )
        return _invalid(raw, reason)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(parsed):
        why = phonenumbers.is_possible_number_with_reason(parsed)
        return _invalid(e164, _REASONS.get(why, "INVALID_BUT_POSSIBLE"))
    return {
        "calling_country_code": str(parsed.country_code),
        "country_code": phonenumbers.region_code_for_number(parsed),
        "phone_number": e164,
        "national_format": phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.NATIONAL
        ),
        "valid": True,
        "validation_errors": None,
    }


def _invalid(number: str, reason: str) -> dict[str, Any]:
    return {
        "calling_country_code": None,
        "country_code": None,
        "phone_number": number,
        "national_format": None,
        "valid": False,
        "validation_errors": [reason],
    }


def line_type(config: SimConfig, e164: str) -> str:
    """The Line Type Intelligence ``type`` of a valid number."""
    if e164 in config.landline_numbers:
        return "landline"
    if e164 in config.voip_numbers:
        return "nonFixedVoip"
    return "mobile"


def lookup(
    config: SimConfig, raw: str, *, fields: str, country: str | None, base_url: str
) -> dict[str, Any]:
    """The whole ``GET /v2/PhoneNumbers/{raw}`` answer."""
    basic = parse_number(raw, country)
    if basic["valid"] and basic["phone_number"] in config.invalid_numbers:
        basic = _invalid(basic["phone_number"], "INVALID_BUT_POSSIBLE")
    answer: dict[str, Any] = dict(basic)
    answer.update(dict.fromkeys(_PACKAGES))
    requested = {name.strip() for name in fields.split(",") if name.strip()}
    if "line_type_intelligence" in requested and basic["valid"]:
        kind = line_type(config, basic["phone_number"])
        carrier, mcc, mnc = _CARRIERS[kind]
        answer["line_type_intelligence"] = {
            "carrier_name": carrier,
            "error_code": None,
            "mobile_country_code": mcc,
            "mobile_network_code": mnc,
            "type": kind,
        }
    answer["url"] = f"{base_url}/v2/PhoneNumbers/{basic['phone_number']}"
    return answer
