"""The reconcile agent's steps over a configuration view, a table and a gateway in memory:
where it looks (the marker's snapshot), when it cannot look (it waits, however late), and
the SIDs the send path claimed (never adopted for another request)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import pytest

from feeds.config import ConfigView
from feeds.secret_box import new_key
from schemas.config import Subaccount
from schemas.events import Reconciled, ReconcileOrder, SendRequest, SendTarget, SidClaimed
from schemas.settings import Settings
from schemas.topics import Topics
from streams import metrics
from streams.reconcile import decision
from streams.reconcile.agent import CLAIMS, Claim, ClaimedTable, Claims, ReconcileAgent
from streams.sending.provider import ProviderDown, TwilioMessage
from streams.worker import Worker
from tests.streams.factories import RecordingTopic, create_use_case, sealed

TO = "+14155552671"
OLD = SendTarget(account_sid="AC" + "1" * 32, messaging_service_sid="MG" + "1" * 32, to=TO)
NEW = SendTarget(account_sid="AC" + "2" * 32, messaging_service_sid="MG" + "2" * 32, to=TO)
USE_CASE = create_use_case(  # PATCHed since the send: another subaccount and service
    account_sid=NEW.account_sid, messaging_service_sid=NEW.messaging_service_sid
)
BODY = "Your code is 1234"


class Gateway:
    """Twilio's list call: answers ``messages`` (or raises ``down``), records the calls."""

    def __init__(self) -> None:
        self.messages: list[TwilioMessage] = []
        self.down: ProviderDown | None = None
        self.asked: list[tuple[str, str]] = []

    async def recent_messages(
        self, account: Subaccount, to: str, since: datetime
    ) -> list[TwilioMessage]:
        self.asked.append((account.account_sid, to))
        if self.down is not None:
            raise self.down
        return self.messages


class Event:
    """What ``bind_event`` needs of an event (something to refer to)."""


def account(target: SendTarget) -> Subaccount:
    now = datetime.now(UTC)
    return Subaccount(
        account_sid=target.account_sid, auth_token="t", created_at=now, updated_at=now
    )


@pytest.fixture
def config() -> ConfigView:
    view = ConfigView()
    view.problem = None
    view.use_cases[USE_CASE.id] = USE_CASE
    for target in (OLD, NEW):
        view.subaccounts[target.account_sid] = account(target)
    return view


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


@pytest.fixture
def answers() -> RecordingTopic:
    return RecordingTopic()


@pytest.fixture
def agent(config: ConfigView, gateway: Gateway, answers: RecordingTopic) -> ReconcileAgent:
    settings = Settings(
        secret_keys=(new_key(),), send_timeout_seconds=6, reconcile_margin_seconds=2
    )
    app = faust.App(f"reconcile-test-{uuid.uuid4().hex}", store="memory://")
    worker = Worker(app=app, settings=settings, config=config, config_feed=None)  # type: ignore[arg-type]
    topics: dict[str, object] = {
        Topics.RECONCILE.base_name: RecordingTopic(),
        Topics.SEND_REQUESTS.base_name: answers,
    }
    worker.topics = topics  # type: ignore[assignment]
    reconciler = ReconcileAgent(worker, gateway)  # type: ignore[arg-type]
    reconciler.claimed = ClaimedTable({})
    return reconciler


def order(target: SendTarget | None, *, age_s: float) -> ReconcileOrder:
    now = datetime.now(UTC)
    request = SendRequest(
        request_id=uuid.uuid4(), body_hash=hashlib.sha256(BODY.encode()).hexdigest(),
        use_case_id=USE_CASE.id, to_phone_number=TO, message=BODY, received_at=now,
        reply_topic="r", correlation_id="c",
    )  # fmt: skip
    return ReconcileOrder(request=request, marker_at=now - timedelta(seconds=age_s), target=target)


def message(sid: str, target: SendTarget, marker_at: datetime) -> TwilioMessage:
    return TwilioMessage(
        sid=sid, to=TO, body=BODY, messaging_service_sid=target.messaging_service_sid,
        status="sent", date_created=marker_at + timedelta(seconds=1),
    )  # fmt: skip


def claim_of(sid: str, request_id: uuid.UUID, body: str = BODY) -> Any:
    """The send path's claim of ``sid`` for ``request_id``, as the agent takes it."""
    claimed = SidClaimed(
        to=TO, body_digest=decision.body_digest(body), message_sid=sid, request_id=request_id,
        at=datetime.now(UTC),
    )  # fmt: skip
    return (Event(), claimed)


def answered(answers: RecordingTopic) -> list[str | None]:
    return [Topics.SEND_REQUESTS.codec.decode(v).message_sid for _, v in answers.sent]


def counted(outcome: str) -> float:
    return float(metrics.RECONCILED.labels(outcome)._value.get())


async def reconcile(agent: ReconcileAgent, reconciled: ReconcileOrder) -> None:
    await agent.settle(reconciled, await agent.look(reconciled), ordered_at=datetime.now(UTC))


async def test_it_looks_where_the_marker_says_the_call_went_not_where_the_use_case_points(
    agent: ReconcileAgent, gateway: Gateway, answers: RecordingTopic
) -> None:
    interrupted = order(OLD, age_s=60)
    gateway.messages = [message("SM_new", NEW, interrupted.marker_at)]
    gateway.messages.append(message("SM_old", OLD, interrupted.marker_at))
    await reconcile(agent, interrupted)
    assert gateway.asked == [(OLD.account_sid, TO)]
    assert answered(answers) == ["SM_old"]


async def test_a_marker_without_a_snapshot_is_reconciled_with_todays_configuration(
    agent: ReconcileAgent, gateway: Gateway, answers: RecordingTopic
) -> None:
    interrupted = order(None, age_s=60)
    gateway.messages = [message("SM_new", NEW, interrupted.marker_at)]
    await reconcile(agent, interrupted)
    assert gateway.asked == [(NEW.account_sid, TO)]
    assert answered(answers) == ["SM_new"]


@pytest.mark.parametrize("cause", ["not caught up", "unknown subaccount", "sealed token"])
async def test_without_configuration_to_ask_twilio_it_waits_even_past_the_window(
    agent: ReconcileAgent, config: ConfigView, gateway: Gateway, answers: RecordingTopic, cause: str
) -> None:
    if cause == "not caught up":
        config.problem = "reading the configuration (3 of 9 offsets)"
    else:
        gone = config.subaccounts.pop(OLD.account_sid)
        if cause == "sealed token":
            config.undecryptable[OLD.account_sid] = sealed(gone)
    before = counted("waiting_configuration")
    await reconcile(agent, order(OLD, age_s=600))
    assert (gateway.asked, answers.sent) == ([], [])  # not asked, and above all not resent
    assert counted("waiting_configuration") == before + 1


async def test_an_old_marker_whose_use_case_is_unknown_is_never_resent(
    agent: ReconcileAgent, config: ConfigView, gateway: Gateway, answers: RecordingTopic
) -> None:
    config.use_cases.clear()
    await reconcile(agent, order(None, age_s=600))
    assert (gateway.asked, answers.sent) == ([], [])


async def test_when_twilios_list_fails_it_waits_even_past_the_window(
    agent: ReconcileAgent, gateway: Gateway, answers: RecordingTopic
) -> None:
    gateway.down = ProviderDown("HTTP 500 from Twilio", retry_after=30)
    before = counted("waiting_twilio")
    await reconcile(agent, order(OLD, age_s=600))
    assert gateway.asked == [(OLD.account_sid, TO)] and answers.sent == []
    assert counted("waiting_twilio") == before + 1


async def test_a_message_the_send_path_created_for_another_request_is_refused(
    agent: ReconcileAgent, gateway: Gateway, answers: RecordingTopic
) -> None:
    """Issue #23's reproduction at the agent: B's create (same body, same number) is claimed
    on the reconcile topic; A, past its window, is sent, not given SM_B."""
    interrupted = order(OLD, age_s=60)
    other = uuid.uuid4()
    agent.record_claims([claim_of("SM_B", other)])
    gateway.messages = [message("SM_B", OLD, interrupted.marker_at)]
    before = counted("refused")
    await reconcile(agent, interrupted)
    assert answered(answers) == [None]  # send it once: SM_B is B's
    assert counted("refused") == before + 1
    assert agent.claimed.requests_by_sid(TO, BODY) == {"SM_B": other}


async def test_an_adoption_is_claimed_so_no_other_request_adopts_it(
    agent: ReconcileAgent, gateway: Gateway, answers: RecordingTopic
) -> None:
    first, second = order(OLD, age_s=60), order(OLD, age_s=60)
    gateway.messages = [message("SM_1", OLD, first.marker_at)]
    await reconcile(agent, first)
    await reconcile(agent, second)
    assert answered(answers) == ["SM_1", None]
    decoded = [Topics.SEND_REQUESTS.codec.decode(v) for _, v in answers.sent]
    assert all(isinstance(d, Reconciled) for d in decoded)
    assert [d.request_id for d in decoded] == [first.request.request_id, second.request.request_id]


async def test_a_claim_arriving_after_the_order_still_keeps_the_message_from_it(
    agent: ReconcileAgent, gateway: Gateway, answers: RecordingTopic
) -> None:
    """A's window has ended, and its order was published before B's claim of SM_B (created
    7 s ago, within A's window) could be: A waits rather than adopt it, and once the claim
    is in, A is sent, not given SM_B."""
    interrupted = order(OLD, age_s=12)
    gateway.messages = [message("SM_B", OLD, interrupted.marker_at + timedelta(seconds=4))]
    before = counted("waiting_claims")
    await reconcile(agent, interrupted)
    assert answers.sent == [] and counted("waiting_claims") == before + 1
    agent.record_claims([claim_of("SM_B", uuid.uuid4())])
    await reconcile(agent, interrupted)
    assert answered(answers) == [None]


def test_claims_are_kept_by_body_and_adoptions_made_before_that_still_count() -> None:
    """Only a message with the request's body can be its message: claims of other bodies
    are kept apart (a number that gets many messages keeps small values). An adoption
    recorded by destination alone (before claims were kept by body) still excludes its SID."""
    table: dict[bytes, bytes] = {}
    claims = ClaimedTable(table)
    mine, other, earlier = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    claims.claim(TO, decision.body_digest(BODY), "SM_1", Claim(request_id=mine, at=now), now)
    claims.claim(TO, decision.body_digest("other"), "SM_2", Claim(request_id=other, at=now), now)
    table[TO.encode()] = CLAIMS.encode(Claims(by_sid={"SM_0": Claim(request_id=earlier, at=now)}))
    assert claims.requests_by_sid(TO, BODY) == {"SM_0": earlier, "SM_1": mine}
    assert claims.requests_by_sid(TO, "other") == {"SM_0": earlier, "SM_2": other}
    later = now + timedelta(hours=25)  # a day later, the old claims go with the next one
    claims.claim(TO, decision.body_digest(BODY), "SM_3", Claim(request_id=mine, at=later), later)
    assert claims.requests_by_sid(TO, BODY) == {"SM_0": earlier, "SM_3": mine}
