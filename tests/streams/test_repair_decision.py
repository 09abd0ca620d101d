"""Status repair's rules alone: which records are due, the backoff, the callback made."""

from __future__ import annotations

from datetime import timedelta

from schemas.records import SmsStatus
from streams.repair import decision
from streams.repair.decision import Checked
from streams.sending.provider import TwilioMessage
from tests.streams.factories import T0, create_use_case

AFTER = timedelta(minutes=15)


def test_only_unfinished_records_past_the_wait_are_due() -> None:
    old = T0 - AFTER
    assert decision.due(SmsStatus.PENDING, old, None, T0, AFTER)
    assert decision.due(SmsStatus.SENT, old, None, T0, AFTER)
    assert not decision.due(SmsStatus.DELIVERED, old, None, T0, AFTER)
    assert not decision.due(SmsStatus.PENDING, T0 - AFTER / 2, None, T0, AFTER)


def test_each_wait_doubles_up_to_a_bound() -> None:
    checked = decision.after_check(None, T0, AFTER)
    assert checked == Checked(1, T0 + AFTER)
    assert not decision.due(SmsStatus.SENT, T0 - AFTER, checked, T0, AFTER)
    again = decision.after_check(checked, T0 + AFTER, AFTER)
    assert again == Checked(2, T0 + AFTER + 2 * AFTER)
    spent = Checked(decision.MAX_CHECKS, T0)
    assert not decision.due(SmsStatus.SENT, T0 - AFTER, spent, T0 + AFTER, AFTER)


def test_the_callback_carries_what_twilio_reports() -> None:
    message = TwilioMessage(
        sid="SM1", to="+14155552671", body="b", messaging_service_sid="MG1",
        status="undelivered", date_created=T0, error_code=30003,
        from_number="+14155550100", num_segments="1",
    )  # fmt: skip
    params = decision.callback_params(message, "AC1")
    assert params["MessageStatus"] == "undelivered" and params["ErrorCode"] == "30003"
    assert params["From"] == "+14155550100" and params["NumSegments"] == "1"
    assert params["AccountSid"] == "AC1" and params["MessageSid"] == "SM1"


def test_a_message_is_fetched_with_the_subaccount_it_was_sent_through() -> None:
    moved = create_use_case(account_sid="AC" + "7" * 32)  # PATCHed after the send
    sent_through = "AC" + "1" * 32
    assert decision.account_to_ask(sent_through, moved) == sent_through
    assert decision.account_to_ask(sent_through, None) == sent_through  # use case deleted
    # A record kept before the subaccount was: the use case's, as it is now.
    assert decision.account_to_ask(None, moved) == moved.account_sid
    assert decision.account_to_ask(None, None) is None
