"""The Kafka plumbing the processes share, beyond the topic catalog (``schemas.topics``).

- :mod:`feeds.config` — :class:`~feeds.config.ConfigFeed` reads the compacted config topic
  into a :class:`~feeds.config.ConfigView` (the ingress and the worker each run one);
- :mod:`feeds.topics` — :func:`~feeds.topics.ensure_topics`: the catalog's topics created
  and their configs aligned at every process's start;
- :mod:`feeds.kafka_admin` — topic configs read and set one key at a time
  (IncrementalAlterConfigs).
"""
