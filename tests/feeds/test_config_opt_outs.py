"""Opt-outs in the configuration view: one per source and number, each deleted by its key;
records written before sources existed read as the admin's."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from feeds.config import ConfigView
from schemas.config import (
    ConfigChange,
    ConfigEntity,
    OptOut,
    OptOutSource,
    config_key,
    opt_out_key,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
USE_CASE = uuid.uuid4()
PERSON = "+14155550199"


class View:
    """A ConfigView fed record by record, as the feed feeds it."""

    def __init__(self) -> None:
        self.view = ConfigView()
        self.offset = -1

    def put(self, entity: ConfigEntity) -> None:
        self.raw(config_key(entity), ConfigChange(entity=entity).model_dump_json().encode())

    def raw(self, key: str, value: bytes | None) -> None:
        self.offset += 1
        self.view.apply(key, value, self.offset)


def opt_out(source: OptOutSource, keyword: str | None = None) -> OptOut:
    return OptOut(
        use_case_id=USE_CASE, phone_number=PERSON, source=source, keyword=keyword, created_at=NOW
    )


def test_an_old_record_without_source_is_an_admin_opt_out() -> None:
    feed = View()
    old = {"kind": "opt_out", "use_case_id": str(USE_CASE), "phone_number": PERSON,
           "created_at": NOW.isoformat()}  # fmt: skip
    feed.raw(f"opt_out:{USE_CASE}:{PERSON}", json.dumps({"entity": old}).encode())
    (held,) = feed.view.opt_outs_of(USE_CASE)
    assert held.source is OptOutSource.ADMIN and held.keyword is None
    assert feed.view.opted_out(USE_CASE, PERSON)


def test_sources_coexist_and_each_key_deletes_only_its_own() -> None:
    feed = View()
    for source in OptOutSource:
        feed.put(opt_out(source, "STOP" if source is OptOutSource.KEYWORD else None))
    assert set(feed.view.number_opt_outs(USE_CASE, PERSON)) == set(OptOutSource)
    feed.raw(opt_out_key(USE_CASE, PERSON, OptOutSource.KEYWORD), None)
    feed.raw(opt_out_key(USE_CASE, PERSON, OptOutSource.TWILIO_21610), None)
    assert [o.source for o in feed.view.opt_outs_of(USE_CASE)] == [OptOutSource.ADMIN]
    assert feed.view.opted_out(USE_CASE, PERSON)
    feed.raw(opt_out_key(USE_CASE, PERSON, OptOutSource.ADMIN), None)
    assert not feed.view.opted_out(USE_CASE, PERSON)
    assert feed.view.opt_outs_of(USE_CASE) == []


def test_a_malformed_opt_out_key_is_ignored() -> None:
    feed = View()
    feed.put(opt_out(OptOutSource.KEYWORD))
    for key in (f"opt_out:{USE_CASE}:{PERSON}:nobody", "opt_out:nope:+1", "opt_out:"):
        feed.raw(key, None)
    assert feed.view.opted_out(USE_CASE, PERSON)
