"""API keys in the config view: applied, replaced, revoked by a tombstone; its freshness."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from feeds.config import ConfigView
from schemas.config import ApiKey, ApiKeyRole, ConfigChange, api_key_config_key, config_key


def make_key(**overrides: object) -> ApiKey:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "name": "orders",
        "role": ApiKeyRole.SMS,
        "use_case_ids": (uuid.uuid4(),),
        "key_sha256": uuid.uuid4().hex * 2,
        "created_at": datetime.now(UTC),
        **overrides,
    }
    return ApiKey.model_validate(fields)


def put(view: ConfigView, key: ApiKey, offset: int) -> None:
    view.apply(config_key(key), ConfigChange(entity=key).model_dump_json().encode(), offset)


def test_a_key_is_found_by_its_hash_and_forgotten_at_its_tombstone() -> None:
    view, key, other = ConfigView(), make_key(), make_key(use_case_ids=None)
    put(view, key, 0)
    put(view, other, 1)
    assert view.api_keys.by_hash(key.key_sha256) == key and view.api_keys.get(key.id) == key
    assert view.api_keys.all() == sorted([key, other], key=lambda k: k.created_at)

    view.apply(api_key_config_key(key.id), None, 2)
    assert view.api_keys.by_hash(key.key_sha256) is None and view.api_keys.get(key.id) is None
    assert view.api_keys.all() == [other] and view.applied_offset == 2


def test_a_replaced_key_drops_its_old_hash() -> None:
    view, key = ConfigView(), make_key()
    put(view, key, 0)
    put(view, changed := key.model_copy(update={"key_sha256": "f" * 64}), 1)
    assert view.api_keys.by_hash(key.key_sha256) is None
    assert view.api_keys.by_hash("f" * 64) == changed and len(view.api_keys) == 1


def test_a_tombstone_with_a_bad_id_or_an_unknown_key_changes_nothing() -> None:
    view, key = ConfigView(), make_key()
    put(view, key, 0)
    view.apply("api_key:not-a-uuid", None, 1)
    view.apply(api_key_config_key(uuid.uuid4()), None, 2)
    assert view.api_keys.all() == [key]


def test_the_key_hash_stays_out_of_repr() -> None:
    key = make_key()
    assert key.key_sha256 not in repr(key)


def test_freshness_is_measured_from_the_last_confirmation() -> None:
    view = ConfigView()
    assert not view.confirmed_within(5.0)  # never confirmed
    view.confirmed_at = time.monotonic()
    assert view.confirmed_within(5.0)
    view.confirmed_at = time.monotonic() - 6.0
    assert not view.confirmed_within(5.0)
