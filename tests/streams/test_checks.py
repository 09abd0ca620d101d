"""The send checks: each alone, their order, the contract's error rows, Twilio's codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import phonenumbers
import pytest

from schemas.config import A2pCampaignStatus, Brand, BrandStatus, NumberType, SenderNumber, UseCase
from schemas.errors import (
    A2pCampaignNotVerified,
    BrandSuspended,
    DestinationOptedOut,
    InvalidDestination,
    NoSenderNumbers,
    RegionNotPermitted,
    SmslaneError,
    UseCaseInactive,
    UseCaseNotFound,
)
from streams.sending.checks import (
    TWILIO_TEST_NUMBERS,
    Destination,
    check_destination,
    check_use_case,
    error_for_twilio_code,
    error_from_twilio_code,
    parse_destination,
)
from tests.streams.factories import create_brand, create_sender, create_use_case

US_MOBILE = "+14155552671"
US = Destination(US_MOBILE, "US")
GB = Destination("+442071838750", "GB")


def send(
    use_case: UseCase | None,
    senders: Sequence[SenderNumber],
    number: str,
    *,
    line_type: str | None = "mobile",
    opted_out: bool = False,
    brand: Brand | None = None,
) -> SmslaneError | None:
    """The checks in the sequence the send agent runs them (Lookup result given)."""
    if error := check_use_case(use_case, senders):
        return error
    dest = parse_destination(number)
    if isinstance(dest, SmslaneError):
        return dest
    assert use_case is not None
    return check_destination(dest, line_type, opted_out, use_case, brand)


# --- check_use_case -----------------------------------------------------------------------


def test_use_case_passes() -> None:
    assert check_use_case(create_use_case(), [create_sender()]) is None


@pytest.mark.parametrize("use_case", [None, create_use_case(deleted=True)])
def test_use_case_not_found(use_case: UseCase | None) -> None:
    assert isinstance(check_use_case(use_case, [create_sender()]), UseCaseNotFound)


def test_use_case_inactive() -> None:
    error = check_use_case(create_use_case(active=False), [create_sender()])
    assert isinstance(error, UseCaseInactive)
    assert "'Appointment reminders'" in error.detail
    assert "PATCH /v1/admin/sms-use-cases/" in error.detail


def test_no_sender_numbers() -> None:
    error = check_use_case(create_use_case(), [])
    assert isinstance(error, NoSenderNumbers)
    assert "/phone-numbers/{phone_number}" in error.detail


@pytest.mark.parametrize("status", ["none", "pending", "failed"])
def test_us_long_code_needs_verified_campaign(status: str) -> None:
    use_case = create_use_case(a2p_campaign_status=A2pCampaignStatus(status))
    error = check_use_case(use_case, [create_sender("+14155550100")])
    assert isinstance(error, A2pCampaignNotVerified)
    assert error.detail == (
        "The sender pool of SMS use case 'Appointment reminders' holds the US long code "
        f"+14155550100, which needs a verified A2P 10DLC campaign; the use case's campaign "
        f"status is '{status}'."
    )


@pytest.mark.parametrize(
    "sender",
    [
        create_sender("+16135550123"),  # Canadian long code
        create_sender("+18005550199", number_type=NumberType.TOLL_FREE),
        create_sender("+14155550100", number_type=NumberType.TOLL_FREE),
        create_sender("+14155550100", number_type=NumberType.SHORT_CODE),
        create_sender("24680", number_type=NumberType.SHORT_CODE),
        create_sender("+442071838750"),  # UK long code
        create_sender("+15555550123"),  # not a valid number: region unknown, not US
    ],
)
def test_pools_without_us_long_code_need_no_campaign(sender: SenderNumber) -> None:
    use_case = create_use_case(a2p_campaign_status=A2pCampaignStatus.NONE)
    assert check_use_case(use_case, [sender]) is None


def test_twilio_test_number_counts_as_us_long_code() -> None:
    use_case = create_use_case(a2p_campaign_status=A2pCampaignStatus.PENDING)
    error = check_use_case(use_case, [create_sender("+15005550006")])
    assert isinstance(error, A2pCampaignNotVerified)


def test_one_us_long_code_in_a_mixed_pool_is_enough() -> None:
    use_case = create_use_case(a2p_campaign_status=A2pCampaignStatus.NONE)
    pool = [
        create_sender("+18005550199", number_type=NumberType.TOLL_FREE),
        create_sender("+16135550123"),
        create_sender("+12025550123"),
    ]
    error = check_use_case(use_case, pool)
    assert isinstance(error, A2pCampaignNotVerified)
    assert "+12025550123" in error.detail


# --- parse_destination --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (US_MOBILE, US),
        ("+16135550123", Destination("+16135550123", "CA")),
        ("+442071838750", GB),
        ("+33612345678", Destination("+33612345678", "FR")),
        ("+80012345678", Destination("+80012345678", None)),  # international freephone
    ],
)
def test_valid_destination(number: str, expected: Destination) -> None:
    assert parse_destination(number) == expected


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("+15555550123", "+15555550123 is not a valid phone number."),
        ("+1415555267", "+1415555267 is not a valid phone number."),
        ("4155552671", "'4155552671' is not a phone number in E.164 format, such as +14155552671."),
        ("hello", "'hello' is not a phone number in E.164 format, such as +14155552671."),
    ],
)
def test_invalid_destination(number: str, detail: str) -> None:
    error = parse_destination(number)
    assert isinstance(error, InvalidDestination)
    assert error.detail == detail


@pytest.mark.parametrize("number", sorted(TWILIO_TEST_NUMBERS))
def test_twilio_test_numbers_are_us(number: str) -> None:
    assert parse_destination(number) == Destination(number, "US")


def test_test_numbers_do_not_depend_on_phone_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phonenumbers, "is_valid_number", lambda _number: False)
    assert parse_destination("+15005550001") == Destination("+15005550001", "US")
    assert isinstance(
        parse_destination("+15005550001", allow_test_numbers=False), InvalidDestination
    )


def test_test_number_range_is_exact() -> None:
    assert frozenset(f"+1500555000{d}" for d in range(10)) == TWILIO_TEST_NUMBERS
    assert "+15005550010" not in TWILIO_TEST_NUMBERS


# --- check_destination --------------------------------------------------------------------


def check(
    dest: Destination = US,
    line_type: str | None = "mobile",
    opted_out: bool = False,
    use_case: UseCase | None = None,
    brand: Brand | None = None,
) -> SmslaneError | None:
    return check_destination(dest, line_type, opted_out, use_case or create_use_case(), brand)


@pytest.mark.parametrize(
    "line_type", ["mobile", "voip", "nonFixedVoip", "tollFree", "unknown", None]
)
def test_non_landline_passes(line_type: str | None) -> None:
    assert check(line_type=line_type, brand=create_brand()) is None


@pytest.mark.parametrize("line_type", ["landline", "Landline", " LANDLINE "])
def test_landline_is_invalid(line_type: str) -> None:
    error = check(line_type=line_type)
    assert isinstance(error, InvalidDestination)
    assert error.detail == "+14155552671 is a landline and cannot receive SMS."


def test_opted_out() -> None:
    error = check(opted_out=True)
    assert isinstance(error, DestinationOptedOut)
    assert error.detail == (
        "+14155552671 has opted out of messages from SMS use case 'Appointment reminders'."
    )


def test_region_not_permitted() -> None:
    error = check(GB)
    assert isinstance(error, RegionNotPermitted)
    assert error.detail == (
        "Destination region 'GB' is not permitted for this use case (permitted: US, CA)."
    )


def test_no_region_permitted() -> None:
    error = check(use_case=create_use_case(permitted_regions=()))
    assert isinstance(error, RegionNotPermitted)
    assert error.detail.endswith("(permitted: none).")


def test_regionless_number_is_never_permitted() -> None:
    error = check(Destination("+80012345678", None))
    assert isinstance(error, RegionNotPermitted)
    assert "belongs to no country or region" in error.detail


def test_region_codes_compare_case_insensitively() -> None:
    assert check(GB, use_case=create_use_case(permitted_regions=("us", "gb"))) is None


def test_brand_suspended() -> None:
    error = check(brand=create_brand(status=BrandStatus.SUSPENDED))
    assert isinstance(error, BrandSuspended)
    assert "'Acme Dental'" in error.detail


@pytest.mark.parametrize("brand", [create_brand(status=BrandStatus.PENDING), create_brand(), None])
def test_brand_not_suspended_passes(brand: Brand | None) -> None:
    assert check(brand=brand) is None


@pytest.mark.parametrize(
    ("fixed", "expected"),
    [
        ((), InvalidDestination),
        (("line_type",), DestinationOptedOut),
        (("line_type", "opted_out"), RegionNotPermitted),
        (("line_type", "opted_out", "region"), BrandSuspended),
        (("line_type", "opted_out", "region", "brand"), type(None)),
    ],
)
def test_destination_check_order(fixed: tuple[str, ...], expected: type[object]) -> None:
    error = check(
        GB if "region" not in fixed else US,
        "mobile" if "line_type" in fixed else "landline",
        "opted_out" not in fixed,
        brand=create_brand(
            status=BrandStatus.VERIFIED if "brand" in fixed else BrandStatus.SUSPENDED
        ),
    )
    assert type(error) is expected


# --- the whole order, against the contract's table -----------------------------------------

#: (status, code) rows of the contract's send-error table these checks own, in order.
CONTRACT_ROWS = [
    (404, "use_case_not_found"),
    (404, "use_case_inactive"),
    (422, "no_sender_numbers"),
    (422, "a2p_campaign_not_verified"),
    (422, "invalid_destination"),  # not a valid number
    (422, "invalid_destination"),  # Lookup says landline
    (422, "destination_opted_out"),
    (422, "region_not_permitted"),
    (422, "brand_suspended"),
]


def test_a_request_failing_every_check_reports_them_in_contract_order() -> None:
    """Fix one failure at a time: each answer is the next row of the contract's table."""
    broken = create_use_case(
        active=False, a2p_campaign_status=A2pCampaignStatus.NONE, permitted_regions=("CA",)
    )
    state: dict[str, Any] = {
        "use_case": None,
        "senders": [],
        "number": "+15555550123",
        "line_type": "landline",
        "opted_out": True,
        "brand": create_brand(status=BrandStatus.SUSPENDED),
    }
    fixes: list[tuple[str, Any]] = [
        ("use_case", broken),
        ("use_case", broken.model_copy(update={"active": True})),
        ("senders", [create_sender()]),
        ("use_case", create_use_case(permitted_regions=("CA",))),
        ("number", US_MOBILE),
        ("line_type", "mobile"),
        ("opted_out", False),
        ("use_case", create_use_case()),
        ("brand", None),
    ]
    answers = []
    for field, value in fixes:
        error = send(**state)
        assert error is not None
        answers.append((error.status_code, error.code))
        state[field] = value
    assert answers == CONTRACT_ROWS
    assert send(**state) is None


# --- Twilio error codes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (21211, InvalidDestination),
        (21614, InvalidDestination),
        (21610, DestinationOptedOut),
        (21408, RegionNotPermitted),
        (None, None),
        (0, None),
        (20003, None),  # authentication failed: ours to fix, not the client's
        (21612, None),  # cannot route to this number
        (30003, None),  # a delivery error, reported by callback
    ],
)
def test_error_for_twilio_code(code: int | None, expected: type[SmslaneError] | None) -> None:
    assert error_for_twilio_code(code) is expected


@pytest.mark.parametrize("code", [21211, 21614, 21610, 21408])
def test_error_from_twilio_code_names_the_code(code: int) -> None:
    error = error_from_twilio_code(code)
    assert error is not None
    assert type(error) is error_for_twilio_code(code)
    assert f"Twilio error {code}" in error.detail
    assert error.status_code == 422


def test_error_from_unmapped_code() -> None:
    assert error_from_twilio_code(30003) is None
    assert error_from_twilio_code(None) is None
