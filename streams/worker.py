"""What the agents of one worker process share: the app, the settings, the configuration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import faust

from feeds.config import ConfigFeed, ConfigView
from schemas.settings import Settings


@dataclass
class Worker:
    """The app and what its agents share."""

    app: faust.App
    settings: Settings
    config: ConfigView
    #: Fills ``config`` from the config topic, read from its start at every start.
    config_feed: ConfigFeed
    topics: dict[str, faust.TopicT] = field(default_factory=dict)
    #: Called when the worker shuts down.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def topic(self, name: str) -> faust.TopicT:
        return self.topics[name]
