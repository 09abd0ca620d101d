"""The SQL side of smslane: the sink that materializes ``sms.status`` and the record store.

- :mod:`sinks.store` — :class:`~sinks.store.Store` (open, upsert, get, list, ping);
- :mod:`sinks.runner` — ``run_sink`` and ``main`` (``smslane sink``);
- :mod:`sinks.rebuild` — ``rebuild_store`` (``smslane store rebuild``): a store from offset 0;
- :mod:`sinks.migrate` — Alembic migrations, applied by ``Store.open`` under a lock;
- :mod:`sinks.errors` — ``StoreUnavailable`` (503) and ``InvalidCursor`` (422), and which
  database errors mean "retry" and which "this row is refused".
"""
