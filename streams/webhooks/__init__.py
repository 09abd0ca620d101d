"""Webhooks to client services: every status change and inbound message delivered to the
endpoints that take it, signed, retried for 72 hours, in order per record and endpoint."""
