"""The record store: SMS records materialized from ``sms.status``, and the queries over them.

The sink writes it, the ingress reads it; both import it from here.

- :mod:`store.store` — :class:`Store` (open, upsert, get, list, ping);
- :mod:`store.tables` — the ``sms_records`` and ``sms_inbound`` tables and their column types;
- :mod:`store.inbound` — inbound SMS: insert and list;
- :mod:`store.webhooks` — the webhook delivery log: upsert, list, purge;
- :mod:`store.cursor` — the opaque keyset cursors of listings;
- :mod:`store.migrate` — Alembic migrations (``store/migrations``), applied by ``Store.open``
  under a lock;
- :mod:`store.errors` — :class:`StoreUnavailable` (503) and :class:`InvalidCursor` (422), and
  which database errors mean "retry" and which "this row is refused".
"""

from store.errors import InvalidCursor, StoreUnavailable
from store.inbound import InboundQuery
from store.store import Store
from store.webhooks import DeliveryQuery

__all__ = ["DeliveryQuery", "InboundQuery", "InvalidCursor", "Store", "StoreUnavailable"]
