"""The department workflow and the two clocks in the store, on a real SQLite file with a fixed clock
(every call passes `now`). Calendar days: weekends and holidays count."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import (
    MANUAL_TRIAGE,
    Action,
    Deadlines,
    ExtensionRefused,
    InvalidTransition,
    LinkRefused,
    PetitionClosed,
    Petitioner,
    PetitionQuery,
    QueueStore,
    Role,
    SortOrder,
    Status,
)
from store.workflow import TRANSITIONS
from tests.test_queue import prediction, submission

FRIDAY = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)  # a Friday: the weekend after it counts
DAY = timedelta(days=1)


@pytest.fixture
def store(database_url: str) -> Iterator[QueueStore]:
    """An empty store on SQLite and on PostgreSQL (each test runs on both)."""
    queue_store = QueueStore(database_url)
    yield queue_store
    queue_store.dispose()


def submitted(store: QueueStore, text: str = "开发商逾期交房", **overrides: object) -> int:
    return store.submit(submission(text, **{"received_at": FRIDAY, **overrides}), now=FRIDAY).petition_id


def test_clocks_count_calendar_days_and_stop_where_they_should(store: QueueStore) -> None:
    petition_id = submitted(store)
    fresh = store.get(petition_id, now=FRIDAY)
    assert fresh.due_at == FRIDAY + 15 * DAY and fresh.handling_due_at is None
    assert store.get(petition_id, now=FRIDAY + 15 * DAY).overdue is False  # due at that instant, not yet past
    late = store.get(petition_id, now=FRIDAY + 15 * DAY + timedelta(seconds=1))
    assert late.overdue and late.hand_over_overdue and not late.handling_overdue
    accepted = store.accept(petition_id, actor="housing-li", role="department", now=FRIDAY + 20 * DAY)
    assert accepted.status == Status.ACCEPTED and accepted.assignee == "housing-li"
    assert accepted.handling_due_at == FRIDAY + 80 * DAY and accepted.overdue is False
    assert accepted.history[-1].details["hand_over_late"] is True
    assert store.get(petition_id, now=FRIDAY + 80 * DAY + DAY).handling_overdue is True
    counts = store.queue_counts(FRIDAY + 81 * DAY)["housing"]
    assert (counts.overdue, counts.hand_over_overdue, counts.handling_overdue, counts.accepted) == (1, 0, 1, 1)
    closed = store.close(petition_id, "已督促交房", reply_summary="已答复", actor="housing-li", role="department")
    assert closed.overdue is False and closed.reply_summary == "已答复"


def test_deadlines_are_configurable(tmp_path: Path) -> None:
    store = QueueStore(f"sqlite:///{tmp_path / 'short.db'}", deadlines=Deadlines(3, 10, 5))
    try:
        petition_id = submitted(store)
        assert store.get(petition_id, now=FRIDAY).due_at == FRIDAY + 3 * DAY
        store.accept(petition_id, actor="dept", role="department", now=FRIDAY)
        assert store.get(petition_id, now=FRIDAY).handling_due_at == FRIDAY + 10 * DAY
        with pytest.raises(ExtensionRefused):
            store.extend(petition_id, 6, "太长", actor="dept", role="department", now=FRIDAY)
    finally:
        store.dispose()


def test_one_extension_of_at_most_the_maximum_with_a_reason(store: QueueStore) -> None:
    petition_id = submitted(store)
    with pytest.raises(InvalidTransition):  # nothing to extend before acceptance
        store.extend(petition_id, 10, "需要现场核查", actor="dept", role="department", now=FRIDAY)
    store.accept(petition_id, actor="dept", role="department", now=FRIDAY)
    with pytest.raises(ExtensionRefused) as too_long:
        store.extend(petition_id, 31, "需要现场核查", actor="dept", role="department", now=FRIDAY)
    assert too_long.value.reason == "too_long"
    extended = store.extend(petition_id, 30, "需要现场核查", actor="dept", role="department", now=FRIDAY + DAY)
    assert extended.handling_due_at == FRIDAY + 90 * DAY and extended.extension_days == 30
    assert extended.extension_reason == "需要现场核查" and extended.status == Status.ACCEPTED
    assert extended.history[-1].action == Action.EXTENDED and extended.history[-1].note == "需要现场核查"
    with pytest.raises(ExtensionRefused) as again:
        store.extend(petition_id, 1, "再延一次", actor="dept", role="department", now=FRIDAY + 2 * DAY)
    assert again.value.reason == "used"
    assert store.get(petition_id, now=FRIDAY + 61 * DAY).handling_overdue is False
    assert store.get(petition_id, now=FRIDAY + 91 * DAY).handling_overdue is True


def test_return_goes_to_the_top_of_manual_triage_and_ends_the_assignment(store: QueueStore) -> None:
    waiting = store.submit(submission("人工件", prediction=prediction(confident=False)), now=FRIDAY - DAY)
    petition_id = submitted(store)
    store.accept(petition_id, actor="dept", role="department", now=FRIDAY)
    store.extend(petition_id, 5, "核查", actor="dept", role="department", now=FRIDAY)
    returned = store.return_to_triage(petition_id, "不属于本部门职责", actor="dept", role="department", now=FRIDAY)
    assert returned.queue == MANUAL_TRIAGE and returned.status == Status.RETURNED
    assert returned.accepted_at is None and returned.assignee is None and returned.handling_due_at is None
    assert returned.extension_days is None and returned.returned_at == FRIDAY
    entry = returned.history[-1]
    assert (entry.action, entry.note, entry.actor, entry.at) == (Action.RETURNED, "不属于本部门职责", "dept", FRIDAY)
    assert (entry.from_queue, entry.to_queue) == ("housing", MANUAL_TRIAGE)
    page, total = store.list_queue(MANUAL_TRIAGE, now=FRIDAY)
    assert total == 2 and [item.id for item in page] == [petition_id, waiting.petition_id]
    assert store.queue_counts(FRIDAY)[MANUAL_TRIAGE].returned == 1
    # a clerk's lease on it runs out: it reads as returned again, then a route sends it on
    claimed = store.claim(MANUAL_TRIAGE, "clerk", lease_seconds=60, now=FRIDAY)
    assert claimed is not None and claimed.id == petition_id  # "claim next" takes it first, as the list shows it
    assert store.get(petition_id, now=FRIDAY + DAY).status == Status.RETURNED
    rerouted = store.route(petition_id, "natural_resources", actor="clerk", role="clerk", now=FRIDAY + DAY).petition
    assert rerouted.status == Status.ROUTED and rerouted.queue == "natural_resources"
    assert store.get(petition_id, now=FRIDAY + 2 * DAY).status == Status.ROUTED


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ("manual", Action.ACCEPTED),  # nothing to accept in manual triage
        ("manual", Action.RETURNED),  # already there
        ("accepted", Action.ACCEPTED),
        ("accepted", Action.ROUTED),  # the department returns it first
        ("routed", Action.EXTENDED),
        ("returned", Action.RETURNED),
    ],
)
def test_transitions_not_in_the_table_are_refused(store: QueueStore, setup: str, action: Action) -> None:
    confident = setup != "manual"
    petition_id = submitted(store, prediction=prediction(confident=confident))
    if setup in {"accepted", "returned"}:
        store.accept(petition_id, actor="dept", role="department", now=FRIDAY)
    if setup == "returned":
        store.return_to_triage(petition_id, "错分", actor="dept", role="department", now=FRIDAY)
    if setup == "routed":
        store.route(petition_id, "housing", actor="clerk", role="clerk", now=FRIDAY)
    before = store.get(petition_id, now=FRIDAY)
    calls = {
        Action.ACCEPTED: lambda: store.accept(petition_id, actor="d", role="department", now=FRIDAY),
        Action.RETURNED: lambda: store.return_to_triage(petition_id, "x", actor="d", role="department", now=FRIDAY),
        Action.ROUTED: lambda: store.route(petition_id, "housing", actor="c", role="clerk", now=FRIDAY),
        Action.EXTENDED: lambda: store.extend(petition_id, 3, "x", actor="d", role="department", now=FRIDAY),
    }
    with pytest.raises(InvalidTransition) as refused:
        calls[action]()
    assert refused.value.status == before.status
    assert store.get(petition_id, now=FRIDAY).history == before.history  # nothing written


def test_closed_is_final_for_every_action(store: QueueStore) -> None:
    petition_id = submitted(store)
    store.close(petition_id, "已办结", actor="clerk", role="clerk", now=FRIDAY)
    for call in (
        lambda: store.accept(petition_id, actor="d", role="department"),
        lambda: store.return_to_triage(petition_id, "x", actor="d", role="department"),
        lambda: store.add_note(petition_id, "x", actor="d", role="department"),
        lambda: store.close(petition_id, "x", actor="d", role="department"),
    ):
        with pytest.raises(PetitionClosed):
            call()
    assert all(Status.CLOSED not in transition.sources for transition in TRANSITIONS.values())


def test_a_note_keeps_status_and_lease(store: QueueStore) -> None:
    petition_id = submitted(store)
    store.claim("housing", "worker", lease_seconds=600, now=FRIDAY)
    noted = store.add_note(petition_id, "已电话联系信访人", actor="dept", role="department", now=FRIDAY)
    assert noted.status == Status.CLAIMED and noted.lease is not None and noted.lease.owner == "worker"
    assert (noted.history[-1].action, noted.history[-1].note) == (Action.NOTED, "已电话联系信访人")


def test_search_by_text_number_external_id_dates_and_filters(store: QueueStore) -> None:
    first = submitted(store, "小区路灯损坏，电话13812345678", external_id="XF-1", channel="phone")
    second = store.submit(submission("开发商逾期交房", received_at=FRIDAY - 20 * DAY), now=FRIDAY).petition_id
    third = submitted(store, "理财平台无法提现", prediction=prediction("finance", "finance_regulation"))
    store.accept(third, actor="fin", role="department", now=FRIDAY)

    def ids(**criteria: object) -> list[int]:
        page, total = store.search(PetitionQuery(**criteria), now=FRIDAY)  # type: ignore[arg-type]
        assert total == len(page)
        return [item.id for item in page]

    assert ids(text="路灯") == [first]
    assert ids(text="13812345678") == [first]  # the query is masked like the text: it finds 【电话】
    assert ids(text="XF-1") == [first] and ids(text=f"#{second}") == [second] and ids(text=str(third)) == [third]
    assert ids(text="100%_") == []
    assert ids(text="xf-1") == [first] and ids(text="路灯损坏") == [first]  # ignoring case on both databases
    assert ids(text="①") == [] and ids(text="第²号") == []  # digits int() refuses are text, not ids
    assert ids(received_to=FRIDAY - 10 * DAY) == [second]
    assert sorted(ids(received_from=FRIDAY - DAY, received_to=FRIDAY)) == [first, third]
    assert ids(overdue=True) == [second] and sorted(ids(overdue=False)) == [first, third]
    assert ids(statuses=(Status.ACCEPTED,)) == [third] and ids(queues=("finance_regulation",)) == [third]
    assert ids(channel="phone") == [first]
    assert ids(sort=SortOrder.DUE) == [second, first, third]  # hand-over due, then handling due (accepted)
    assert ids(sort=SortOrder.DUE_DESC) == [third, first, second]
    store.close(first, "已修复", actor="clerk", role="clerk", now=FRIDAY)
    assert first not in ids() and ids(statuses=(Status.CLOSED,)) == [first]


def test_petitioner_fields_are_stored(store: QueueStore) -> None:
    petitioner = Petitioner(name="张三", contact="13812345678", headcount=12, address="某区某街道1号")
    petition = store.get(submitted(store, petitioner=petitioner), now=FRIDAY)
    assert (petition.petitioner_name, petition.petitioner_contact) == ("张三", "13812345678")
    assert (petition.headcount, petition.address) == (12, "某区某街道1号")


def test_links_never_close_a_loop_even_when_two_clerks_link_at_once(store: QueueStore) -> None:
    """A repeat points at its case. A -> B -> C -> A used to be accepted (only A -> B -> A was checked),
    and on PostgreSQL two clerks linking A -> B and B -> A at the same moment both succeeded."""
    first, second, third = (submitted(store, f"开发商逾期交房第{n}次反映") for n in range(3))
    store.link(first, second, actor="clerk", role=Role.CLERK, now=FRIDAY)
    store.link(second, third, actor="clerk", role=Role.CLERK, now=FRIDAY)
    with pytest.raises(LinkRefused):
        store.link(third, first, actor="clerk", role=Role.CLERK, now=FRIDAY)
    assert store.get(third, now=FRIDAY).linked_case is None

    outcomes: list[str] = []
    for n in range(12):
        a, b = (submitted(store, f"同一小区物业问题第{n}批第{side}件") for side in range(2))
        barrier = threading.Barrier(2)

        def link(item: int, case_id: int, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                store.link(item, case_id, actor="clerk", role=Role.CLERK, now=FRIDAY)
                outcomes.append("linked")
            except LinkRefused:
                outcomes.append("refused")

        threads = [threading.Thread(target=link, args=pair) for pair in ((a, b), (b, a))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not (store.get(a, now=FRIDAY).linked_case == b and store.get(b, now=FRIDAY).linked_case == a)
    assert outcomes.count("linked") == 12 and outcomes.count("refused") == 12
