"""The typed dependencies of the HTTP routes: what a route needs, named in its signature.

Routes take ``SettingsDep``, ``BridgeDep``, ``ConfigDep``, ``StoreDep``, ``RecentDep`` and
``ApiKeyDep`` instead of reading ``request.app.state``; a test swaps any of them through
``app.dependency_overrides[get_bridge] = ...`` instead of starting Kafka or a database.

Every getter is ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency
in its thread pool, a thread hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from feeds.config import ConfigView
from ingress import auth, keys
from ingress.bridge import KafkaBridge
from ingress.recent import RecentRecords
from schemas.settings import Settings
from store import Store


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with (``create_app``)."""
    settings: Settings = request.app.state.settings
    return settings


async def get_bridge(request: Request) -> KafkaBridge:
    """The process's connection to Kafka (it answers 503 until it is connected)."""
    bridge: KafkaBridge = request.app.state.bridge
    return bridge


async def get_store(request: Request) -> Store:
    """The record store, opened by the app's lifespan."""
    store: Store = request.app.state.store
    return store


async def get_recent(request: Request) -> RecentRecords:
    """The records this process answered 201 for lately (read-your-writes)."""
    recent: RecentRecords = request.app.state.recent
    return recent


SettingsDep = Annotated[Settings, Depends(get_settings)]
BridgeDep = Annotated[KafkaBridge, Depends(get_bridge)]
StoreDep = Annotated[Store, Depends(get_store)]
RecentDep = Annotated[RecentRecords, Depends(get_recent)]


async def get_config(bridge: BridgeDep) -> ConfigView:
    """The configuration as this process has read it (the bridge's view, new at a reconnect)."""
    return bridge.config


ConfigDep = Annotated[ConfigView, Depends(get_config)]


def _caller(request: Request, settings: Settings, config: ConfigView) -> auth.Caller:
    """The caller of the request's bearer key: a bootstrap key, or one made through the
    admin API (401 for anything else)."""
    token = auth.bearer(request.headers.get("authorization", ""))
    return auth.bootstrap_caller(token, settings) or keys.stored_caller(token, config)


async def require_api_key(
    request: Request, settings: SettingsDep, config: ConfigDep
) -> auth.Caller:
    """/v1/sms*: the caller, of any role (401 without a valid key)."""
    return _caller(request, settings, config)


async def require_admin_key(
    request: Request, settings: SettingsDep, config: ConfigDep
) -> auth.Caller:
    """/v1/admin/*: the caller; 401 for an unknown key, 403 for a non-admin key."""
    return auth.require_admin(_caller(request, settings, config))


ApiKeyDep = Annotated[auth.Caller, Depends(require_api_key)]
AdminKeyDep = Annotated[auth.Caller, Depends(require_admin_key)]
