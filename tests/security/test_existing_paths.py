"""The existing end-to-end tests of sending and of the delivery lifecycle (sends, Twilio's
callbacks, the records in the store, admin calls), run as they are against the broker that
accepts only SASL_SSL with SCRAM-SHA-512: here their ``stack`` is the secured stack."""

from __future__ import annotations

import pytest

from tests.harness import Stack
from tests.integration import test_lifecycle as lifecycle
from tests.integration import test_send as sending

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(secured_stack: Stack) -> Stack:
    return secured_stack


test_send_answers_the_pending_record_and_get_finds_it = (
    sending.test_send_answers_the_pending_record_and_get_finds_it
)
test_use_case_not_found_deleted_and_inactive = sending.test_use_case_not_found_deleted_and_inactive
test_pool_and_campaign_checks = sending.test_pool_and_campaign_checks
test_destination_checks = sending.test_destination_checks
test_twilio_errors_map_to_the_contracts_codes = (
    sending.test_twilio_errors_map_to_the_contracts_codes
)
test_idempotency_key_replays_and_conflicts = sending.test_idempotency_key_replays_and_conflicts
test_a_retry_during_the_twilio_call_gets_the_first_answer = (
    sending.test_a_retry_during_the_twilio_call_gets_the_first_answer
)
test_delivered_lifecycle = lifecycle.test_delivered_lifecycle
test_undelivered_and_failed_carry_error_codes = (
    lifecycle.test_undelivered_and_failed_carry_error_codes
)
test_adversarial_orders_end_delivered = lifecycle.test_adversarial_orders_end_delivered
test_callback_before_the_record_is_held_and_applied = (
    lifecycle.test_callback_before_the_record_is_held_and_applied
)
test_sms_status_versions_are_contiguous_per_record = (
    lifecycle.test_sms_status_versions_are_contiguous_per_record
)
