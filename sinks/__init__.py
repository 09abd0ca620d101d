"""The sink process: ``sms.status`` materialized into the record store (:mod:`store`).

- :mod:`sinks.runner` — ``run_sink`` and ``main`` (``smslane sink``);
- :mod:`sinks.rebuild` — ``rebuild_store`` (``smslane store rebuild``): a store from offset 0.
"""
