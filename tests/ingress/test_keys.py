"""API keys without HTTP: their form, their hash, the caller they stand for, scope checks."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest

from feeds.config import ConfigView
from ingress import keys
from ingress.auth import Caller, bootstrap_caller, require_admin
from schemas.config import ApiKeyRole
from schemas.errors import Forbidden, ServiceUnavailable, Unauthorized
from schemas.settings import Settings
from tests.feeds.test_api_keys import make_key, put


def current_view() -> ConfigView:
    view = ConfigView()
    view.confirmed_at = time.monotonic()
    return view


@pytest.mark.parametrize("role", list(ApiKeyRole))
def test_a_new_key_names_its_role_and_is_never_the_same(role: ApiKeyRole) -> None:
    made = {keys.new_key(role) for _ in range(50)}
    assert len(made) == 50
    for key in made:
        assert key.startswith(f"sl_{role.value}_") and keys.looks_like_key(key)
        assert len(key.removeprefix(f"sl_{role.value}_")) == 43  # 32 bytes, URL-safe base64


@pytest.mark.parametrize(
    "token",
    ["", "sl_sms_", "sl_sms_short", "sl_root_" + "a" * 43, "sl_sms_" + "a" * 44,
     "sl_sms_" + "a" * 42 + "!", "test-api-key", "SL_SMS_" + "a" * 43],
)  # fmt: skip
def test_a_malformed_key_is_refused_before_any_lookup(token: str) -> None:
    assert not keys.looks_like_key(token)
    with pytest.raises(Unauthorized):
        keys.stored_caller(token, ConfigView())  # not even the view's freshness is asked


def test_the_stored_form_is_the_sha256_of_the_key() -> None:
    key = keys.new_key(ApiKeyRole.SMS)
    assert keys.key_sha256(key) == hashlib.sha256(key.encode()).hexdigest()
    assert key not in keys.key_sha256(key)


def test_a_stored_key_stands_for_its_id_role_and_scope() -> None:
    view, token = current_view(), keys.new_key(ApiKeyRole.SMS)
    stored = make_key(key_sha256=keys.key_sha256(token))
    put(view, stored, 0)
    caller = keys.stored_caller(token, view)
    assert caller == Caller(str(stored.id), "sms", frozenset(stored.use_case_ids or ()))
    assert caller.may_use(next(iter(stored.use_case_ids or ())))
    assert not caller.may_use(uuid.uuid4())


def test_an_admin_key_with_every_use_case() -> None:
    view, token = current_view(), keys.new_key(ApiKeyRole.ADMIN)
    put(
        view,
        make_key(role=ApiKeyRole.ADMIN, use_case_ids=None, key_sha256=keys.key_sha256(token)),
        0,
    )
    caller = keys.stored_caller(token, view)
    assert caller.role == "admin" and caller.use_case_ids is None and caller.may_use(uuid.uuid4())
    assert require_admin(caller) is caller


def test_an_unknown_or_revoked_key_is_refused() -> None:
    view, token = current_view(), keys.new_key(ApiKeyRole.SMS)
    with pytest.raises(Unauthorized):
        keys.stored_caller(token, view)
    stored = make_key(key_sha256=keys.key_sha256(token))
    put(view, stored, 0)
    keys.stored_caller(token, view)
    view.apply(f"api_key:{stored.id}", None, 1)
    with pytest.raises(Unauthorized):
        keys.stored_caller(token, view)


def test_a_view_not_confirmed_lately_refuses_stored_keys_with_503() -> None:
    view, token = ConfigView(), keys.new_key(ApiKeyRole.SMS)
    put(view, make_key(key_sha256=keys.key_sha256(token)), 0)
    with pytest.raises(ServiceUnavailable):
        keys.stored_caller(token, view)  # never confirmed: it may have missed a revocation
    view.confirmed_at = time.monotonic() - keys.FRESHNESS_S - 0.5
    with pytest.raises(ServiceUnavailable):
        keys.stored_caller(token, view)


def test_bootstrap_keys_have_every_use_case() -> None:
    settings = Settings(api_keys=("plain",), admin_api_keys=("boss",))
    sms, admin = bootstrap_caller("plain", settings), bootstrap_caller("boss", settings)
    assert sms is not None and sms.role == "sms" and sms.use_case_ids is None
    assert admin is not None and admin.role == "admin" and admin.use_case_ids is None
    assert sms.key_id != admin.key_id and "plain" not in sms.key_id
    assert bootstrap_caller("stranger", settings) is None
    with pytest.raises(Forbidden):
        require_admin(sms)
