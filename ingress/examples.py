"""Example payloads of the API documentation (``/docs``): requests, answers, callbacks.

The routes name them in their decorators (``ingress.docs.answers``, ``body_example``);
``tests/observability/test_openapi.py`` checks the record examples are real records.
"""

from __future__ import annotations

SID = "SM" + "9f2c4b1a" * 4
RECORD = {
    "id": "5b0c9c1e-2f3a-4d5e-8f70-1a2b3c4d5e6f",
    "use_case_id": "0b6f3c1e-7d2a-4f5e-9c1b-2a3d4e5f6a7b",
    "message_sid": SID,
    "from_number": None,
    "to_number": "+14155550123",
    "body": "Your code is 123456",
    "num_segments": None,
    "status": "pending",
    "handed_off_at": None,
    "delivered_at": None,
    "errored_at": None,
    "error_code": None,
    "created_at": "2026-11-26T10:00:00.812Z",
    "updated_at": "2026-11-26T10:00:00.812Z",
    "send_at": None,
    "validity_period": None,
    "client_reference": None,
    "canceled_at": None,
}
#: A message sent with ``send_at``, as its 201 answers it.
SCHEDULED = {
    **RECORD,
    "status": "scheduled",
    "body": "Reminder: your appointment is tomorrow at 9:30.",
    "send_at": "2026-11-27T08:30:00Z",
    "validity_period": 3600,
    "client_reference": "appointment-4711",
}
CANCELED = {
    **SCHEDULED,
    "status": "canceled",
    "canceled_at": "2026-11-26T15:12:09.310Z",
    "updated_at": "2026-11-26T15:12:09.310Z",
}
DELIVERED = {
    **RECORD,
    "from_number": "+14155550100",
    "num_segments": 1,
    "status": "delivered",
    "handed_off_at": "2026-11-26T10:00:01.204Z",
    "delivered_at": "2026-11-26T10:00:03.911Z",
    "updated_at": "2026-11-26T10:00:03.911Z",
}
SUBACCOUNT_BODY = {"auth_token": "your_auth_token", "friendly_name": "Acme production"}
STAMPS = {"created_at": "2026-11-26T09:00:00Z", "updated_at": "2026-11-26T09:00:00Z"}
SUBACCOUNT = {"account_sid": "AC" + "0a1b2c3d" * 4, "friendly_name": "Acme production", **STAMPS}
BRAND_BODY = {"name": "Acme", "status": "verified"}
BRAND = {"brand_id": "acme", **BRAND_BODY, **STAMPS}
USE_CASE_BODY = {
    "name": "Order updates",
    "account_sid": SUBACCOUNT["account_sid"],
    "messaging_service_sid": "MG" + "4e5f6a7b" * 4,
    "brand_id": "acme",
    "a2p_campaign_status": "verified",
    "permitted_regions": ["US", "CA"],
    "active": True,
}
USE_CASE = {"id": RECORD["use_case_id"], **USE_CASE_BODY, **STAMPS}
POOL_ENTRY = {
    "phone_number": "+14155550100",
    "number_type": "long_code",
    "created_at": STAMPS["created_at"],
}
NUMBER = {"use_case_id": RECORD["use_case_id"], **POOL_ENTRY}
OPT_OUT = {
    "use_case_id": RECORD["use_case_id"],
    "phone_number": "+14155550123",
    "source": "admin",
    "keyword": None,
    "created_at": STAMPS["created_at"],
}
CALLBACK_FORM = {
    "AccountSid": SUBACCOUNT["account_sid"],
    "MessageSid": SID,
    "MessageStatus": "delivered",
    "From": "+14155550100",
    "To": "+14155550123",
    "NumSegments": "1",
}

SCHEDULED_SEND_BODY = {
    "use_case_id": RECORD["use_case_id"],
    "to_phone_number": RECORD["to_number"],
    "message": SCHEDULED["body"],
    "send_at": SCHEDULED["send_at"],
    "validity_period": SCHEDULED["validity_period"],
    "client_reference": SCHEDULED["client_reference"],
}
SEND_BODY = {
    "use_case_id": RECORD["use_case_id"],
    "to_phone_number": RECORD["to_number"],
    "message": RECORD["body"],
}
PAGE = {"items": [DELIVERED], "next_cursor": "eyJ0IjoiMjAyNi0xMS0yNiJ9"}
USE_CASE_WITH_NUMBERS = {**USE_CASE, "phone_numbers": [POOL_ENTRY]}
USE_CASE_PATCH = {"active": False}
USE_CASE_PATCHED = {**USE_CASE, "active": False}
NUMBER_BODY = {"number_type": "long_code"}
API_KEY_BODY = {"name": "Order service", "role": "sms", "use_case_ids": [RECORD["use_case_id"]]}
API_KEY = {
    "id": "3f9d2c1b-6a5e-4f70-9b8c-7d6e5f4a3b2c",
    **API_KEY_BODY,
    "created_at": STAMPS["created_at"],
}
API_KEY_CREATED = {**API_KEY, "key": "sl_sms_" + "x" * 43}
API_KEYS = {"items": [API_KEY]}

INBOUND_FORM = {
    "AccountSid": SUBACCOUNT["account_sid"],
    "MessageSid": "SM" + "7a6b5c4d" * 4,
    "MessagingServiceSid": USE_CASE_BODY["messaging_service_sid"],
    "From": "+14155550123",
    "To": "+14155550100",
    "Body": "STOP",
    "OptOutType": "STOP",
    "NumMedia": "0",
}
INBOUND = {
    "id": "8d2e6f4a-1b3c-4d5e-9f60-7a8b9c0d1e2f",
    "use_case_id": RECORD["use_case_id"],
    "message_sid": INBOUND_FORM["MessageSid"],
    "account_sid": INBOUND_FORM["AccountSid"],
    "messaging_service_sid": INBOUND_FORM["MessagingServiceSid"],
    "from_number": INBOUND_FORM["From"],
    "to_number": INBOUND_FORM["To"],
    "body": "Running late, see you at 5",
    "received_at": "2026-11-26T10:05:00.120Z",
}
INBOUND_PAGE = {"items": [INBOUND], "next_cursor": None}
_LISTED_OPT_OUT = {k: v for k, v in OPT_OUT.items() if k != "use_case_id"}
OPT_OUTS = {
    "items": [
        _LISTED_OPT_OUT,
        {**_LISTED_OPT_OUT, "phone_number": "+14155550124", "source": "keyword", "keyword": "STOP"},
    ]
}

WEBHOOK_ENDPOINT_BODY = {
    "url": "https://orders.example.com/smslane",
    "events": ["sms.status", "sms.inbound"],
    "use_case_ids": [RECORD["use_case_id"]],
    "statuses": ["delivered", "failed", "undelivered"],
    "description": "Order service",
}
WEBHOOK_ENDPOINT = {
    "id": "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    **WEBHOOK_ENDPOINT_BODY,
    "enabled": True,
    **STAMPS,
}
WEBHOOK_SECRET = {"secret": "whsec_" + "x" * 43}
WEBHOOK_ENDPOINT_CREATED = {**WEBHOOK_ENDPOINT, **WEBHOOK_SECRET}
WEBHOOK_ENDPOINTS = {"items": [WEBHOOK_ENDPOINT]}
WEBHOOK_PATCH = {"enabled": False}
WEBHOOK_DELIVERIES = {
    "items": [
        {
            "event_id": "evt_" + "3b9f" * 8,
            "type": "sms.status",
            "status": "pending",
            "attempts": 2,
            "last_status_code": 503,
            "last_error": "HTTP 503",
            "response_head": "try later",
            "next_attempt_at": "2026-11-26T10:02:35Z",
            "delivered_at": None,
            "created_at": "2026-11-26T10:00:00.812Z",
            "updated_at": "2026-11-26T10:00:35Z",
        }
    ],
    "next_cursor": None,
}
WEBHOOK_REPLAY_BODY = {"since": "2026-11-26T00:00:00Z"}
WEBHOOK_REPLAY = {"id": WEBHOOK_ENDPOINT["id"], "since": "2026-11-26T00:00:00Z"}
