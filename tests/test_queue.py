"""The data layer on a real SQLite file and on a real PostgreSQL server (the `database_url` fixture gives
each test both): idempotent submit, claim under contention, leases, routing, overdue rules, migrations
of an existing database, concurrent writers on separate connections. No model is needed: predictions
are built by hand so each case controls the route."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text

from model.classifier import HeadPrediction, Prediction
from store import (
    MANUAL_TRIAGE,
    Action,
    IdempotencyConflict,
    PetitionClosed,
    PetitionNotFound,
    PetitionQuery,
    QueueStore,
    RejectedValue,
    Role,
    Submission,
    UnknownQueue,
)
from store.engine import PoolOptions, make_engine
from store.errors import DatabaseUnavailable
from store.migrations import LATEST, MigrationError, current_version, migrate
from store.similar import SimilarPetitions
from tests.support import free_port

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
T = TypeVar("T")


def prediction(domain: str = "real_estate", department: str | None = "housing", confident: bool = True) -> Prediction:
    heads = {"domain": HeadPrediction(domain, 0.95 if confident else 0.4, [(domain, 0.95)], not confident)}
    if department is not None:
        heads["department"] = HeadPrediction(department, 0.9, [(department, 0.9)], False)
    return Prediction(heads, [("开发商", 0.3)])


def submission(text: str = "开发商逾期交房，联系电话13812345678", **overrides: object) -> Submission:
    values: dict[str, object] = {
        "text": text,
        "channel": "letter",
        "prediction": prediction(),
        "model_version": "v-test",
        "received_at": T0,
        "actor": "tester",
        "role": "clerk",
    }
    values.update(overrides)
    return Submission(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(database_url: str) -> Iterator[QueueStore]:
    queue_store = QueueStore(database_url)
    yield queue_store
    queue_store.dispose()


def run_together(workers: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(slot)` in `workers` threads released at the same moment; re-raise the first failure."""
    barrier = threading.Barrier(workers)
    results: list[T | None] = [None] * workers
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            barrier.wait()
            results[slot] = work(slot)
        except BaseException as error:  # surfaced below, a thread cannot fail the test itself
            errors.append(error)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


def test_submit_stores_masked_text_due_date_and_route(store: QueueStore) -> None:
    done = store.submit(submission(), now=T0)
    petition = store.get(done.petition_id, now=T0)
    assert done.created
    assert petition.queue == "housing" and petition.status == "queued"
    assert petition.due_at == T0 + timedelta(days=15)
    assert "13812345678" in petition.text
    assert "13812345678" not in petition.masked_text and "【电话】" in petition.masked_text
    assert [item.action for item in petition.history] == ["submitted"]
    assert "13812345678" not in str(petition.history)


def test_uncertain_or_single_head_predictions_go_to_manual_triage(store: QueueStore) -> None:
    unsure = store.submit(submission("甲", prediction=prediction(confident=False)))
    one_head = store.submit(submission("乙", prediction=prediction(department=None)))
    unknown_department = store.submit(submission("丙", prediction=prediction(department="not_a_department")))
    for done in (unsure, one_head, unknown_department):
        assert store.get(done.petition_id).queue == MANUAL_TRIAGE
    assert store.get(one_head.petition_id).needs_review is True


def test_submit_is_idempotent_on_external_id_and_key(store: QueueStore) -> None:
    first = store.submit(submission(external_id="A-1"))
    again = store.submit(submission(external_id="A-1"))
    keyed = store.submit(submission("另一件", idempotency_key="key-1"))
    keyed_again = store.submit(submission("另一件", idempotency_key="key-1"))
    assert again == type(again)(first.petition_id, created=False)
    assert keyed_again.petition_id == keyed.petition_id and not keyed_again.created
    with pytest.raises(IdempotencyConflict):
        store.submit(submission("完全不同的内容", external_id="A-1"))
    assert sum(counts.open for counts in store.queue_counts().values()) == 2


def test_submit_each_fails_only_the_conflicting_item(store: QueueStore) -> None:
    store.submit(submission("原件", external_id="B-1"))
    outcomes = store.submit_each(
        [
            submission("新件", external_id="B-2"),
            submission("冲突", external_id="B-1"),
            submission("新件", external_id="B-2"),
        ]
    )
    assert outcomes[0].created  # type: ignore[union-attr]
    assert isinstance(outcomes[1], IdempotencyConflict)
    assert outcomes[2].petition_id == outcomes[0].petition_id and not outcomes[2].created  # type: ignore[union-attr]


def test_a_value_postgresql_rejects_is_the_stores_rejected_value(store: QueueStore) -> None:
    """PostgreSQL cannot hold NUL in text (the API drops it before the store); its DataError, which lost a
    whole batch as a 500, is `RejectedValue`, nothing of the batch is stored, and the store goes on."""
    batch = [submission("开发商逾期交房"), submission("开发商\x00逾期交房")]
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(RejectedValue):
            store.submit_each(batch)
        with pytest.raises(RejectedValue):
            store.search(PetitionQuery(text="开发商\x00"))
        assert store.search(PetitionQuery())[1] == 0
    else:
        assert all(outcome.created for outcome in store.submit_each(batch))  # type: ignore[union-attr]
    assert store.submit(submission("开发商逾期交房，再次来信")).created


def test_concurrent_claims_hand_out_every_item_exactly_once(database_url: str) -> None:
    store = QueueStore(database_url)
    expected = {store.submit(submission(f"第{i}件"), now=T0).petition_id for i in range(120)}
    own = [QueueStore(database_url, run_migrations=False) for _ in range(12)]  # separate engines and connections

    def work(slot: int) -> list[int]:
        claimed: list[int] = []
        while (petition := own[slot].claim("housing", f"worker-{slot}", lease_seconds=600)) is not None:
            claimed.append(petition.id)
        return claimed

    claimed = run_together(len(own), work)
    for other in own:
        other.dispose()
    every = [pid for ids in claimed for pid in ids]
    assert len(every) == len(set(every)), "an item was handed to two workers"
    assert set(every) == expected
    assert sum(1 for ids in claimed if ids) > 1, "claims were not actually concurrent"
    assert store.queue_counts()["housing"].claimed == 120
    store.dispose()


def test_claim_takes_oldest_due_first(store: QueueStore) -> None:
    late = store.submit(submission("晚", received_at=T0))
    early = store.submit(submission("早", received_at=T0 - timedelta(days=3)))
    assert store.claim("housing", "w", lease_seconds=60, now=T0).id == early.petition_id
    assert store.claim("housing", "w", lease_seconds=60, now=T0).id == late.petition_id
    assert store.claim("housing", "w", lease_seconds=60, now=T0) is None


def test_expired_lease_returns_the_item_to_the_queue(store: QueueStore) -> None:
    done = store.submit(submission(), now=T0)
    first = store.claim("housing", "alice", lease_seconds=60, now=T0)
    assert first is not None and first.status == "claimed"
    assert store.claim("housing", "bob", lease_seconds=60, now=T0 + timedelta(seconds=30)) is None
    later = T0 + timedelta(seconds=61)
    assert store.get(done.petition_id, now=later).status == "queued"
    assert store.queue_counts(later)["housing"].queued == 1
    second = store.claim("housing", "bob", lease_seconds=60, now=later)
    assert second is not None and second.id == done.petition_id and second.lease_owner == "bob"
    assert second.history[-1].details["expired_lease_of"] == "alice"


def test_route_confirms_or_corrects_and_records_feedback(store: QueueStore) -> None:
    confirmed = store.submit(submission("确认"))
    corrected = store.submit(submission("更正"))
    routed = store.route(confirmed.petition_id, "housing", actor="clerk", role="clerk")
    petition = routed.petition
    assert not routed.correction and petition.status == "routed" and petition.handed_over_at is not None
    assert routed.decision == "accepted"
    routed = store.route(
        corrected.petition_id, "natural_resources", domain="other", note="不动产登记", actor="clerk", role="clerk"
    )
    petition = routed.petition
    assert routed.correction and routed.decision == "rerouted"
    assert petition.queue == "natural_resources" and petition.domain == "other"
    assert petition.history[-1].action == "corrected" and petition.history[-1].note == "不动产登记"
    accepted, item = store.feedback()  # both were auto-routed: one confirmed, one re-routed
    assert (accepted.petition_id, accepted.decision, accepted.corrected_department) == (
        confirmed.petition_id,
        "accepted",
        "housing",
    )
    assert (item.petition_id, item.predicted_department, item.corrected_department) == (
        corrected.petition_id,
        "housing",
        "natural_resources",
    )
    assert item.decision == "rerouted" and item.auto_routed and item.role == "clerk"
    assert item.corrected_domain == "other" and item.masked_text == "更正"
    with pytest.raises(UnknownQueue):
        store.route(corrected.petition_id, "nowhere", actor="clerk", role="clerk")
    with pytest.raises(PetitionNotFound):
        store.route(999_999, "housing", actor="clerk", role="clerk")


def test_routed_items_stay_claimable_and_return_as_routed(store: QueueStore) -> None:
    done = store.submit(submission(), now=T0)
    store.route(done.petition_id, "housing", actor="clerk", role="clerk", now=T0)
    assert store.claim("housing", "dept", lease_seconds=10, now=T0) is not None
    assert store.get(done.petition_id, now=T0 + timedelta(seconds=11)).status == "routed"


def test_close_is_final(store: QueueStore) -> None:
    done = store.submit(submission())
    store.claim("housing", "dept", lease_seconds=60)
    closed = store.close(done.petition_id, "已办结", actor="dept", role="department")
    assert closed.status == "closed" and closed.lease_owner is None
    with pytest.raises(PetitionClosed):
        store.close(done.petition_id, "again", actor="dept", role="department")
    with pytest.raises(PetitionClosed):
        store.route(done.petition_id, "housing", actor="clerk", role="clerk")
    assert store.claim("housing", "dept", lease_seconds=60) is None


def test_hand_over_clock_runs_until_the_department_accepts(store: QueueStore) -> None:
    now = T0 + timedelta(days=16)
    accepted = store.submit(submission("部门已受理"), now=T0)
    leased = store.submit(submission("部门只领取"), now=T0)
    routed = store.submit(submission("登记员已分流"), now=T0)
    manual = store.submit(submission("人工", prediction=prediction(confident=False)), now=T0)
    assert store.get(accepted.petition_id, now=T0 + timedelta(days=14)).overdue is False
    store.accept(accepted.petition_id, actor="dept", role="department", now=T0 + timedelta(days=1))
    assert store.claim("housing", "worker", lease_seconds=60, now=T0 + timedelta(days=1)).id == leased.petition_id
    store.route(routed.petition_id, "housing", actor="clerk", role="clerk", now=T0 + timedelta(days=2))
    store.claim(MANUAL_TRIAGE, "clerk", lease_seconds=60, now=T0 + timedelta(days=1))
    assert store.get(accepted.petition_id, now=now).overdue is False  # the department took it in time
    for waiting in (leased, routed, manual):  # a lease or a route does not stop the hand-over clock
        petition = store.get(waiting.petition_id, now=now)
        assert petition.overdue and petition.hand_over_overdue and not petition.handling_overdue
    counts = store.queue_counts(now)
    assert counts["housing"].overdue == 2 and counts["housing"].hand_over_overdue == 2
    assert counts[MANUAL_TRIAGE].overdue == 1 and counts["housing"].accepted == 1


def test_list_queue_pages_oldest_due_first(store: QueueStore) -> None:
    ids = [store.submit(submission(f"件{i}", received_at=T0 - timedelta(days=i))).petition_id for i in range(5)]
    page, total = store.list_queue("housing", limit=2, offset=1)
    assert total == 5 and [p.id for p in page] == [ids[3], ids[2]]
    with pytest.raises(UnknownQueue):
        store.list_queue("nowhere")


def test_concurrent_submissions_with_one_key_store_one_petition(database_url: str) -> None:
    """Replicas racing with the same external id: the unique constraint, not a lookup, decides."""
    QueueStore(database_url).dispose()
    own = [QueueStore(database_url, run_migrations=False) for _ in range(8)]
    for round_ in range(5):
        outcomes = run_together(len(own), lambda slot, r=round_: own[slot].submit(submission(external_id=f"R-{r}")))
        assert len({done.petition_id for done in outcomes}) == 1
        assert sum(done.created for done in outcomes) == 1
    counts = own[0].queue_counts()
    assert sum(item.open for item in counts.values()) == 5
    for store in own:
        store.dispose()


def test_concurrent_closes_of_one_petition_close_it_once(database_url: str) -> None:
    """Route and close lock the row: of two writers at once, the second sees the first's close."""
    store = QueueStore(database_url)
    own = [QueueStore(database_url, run_migrations=False) for _ in range(6)]
    for _ in range(3):
        petition_id = store.submit(submission(f"办结{_}")).petition_id

        def close(slot: int, petition_id: int = petition_id) -> bool:
            try:
                own[slot].close(petition_id, f"办结 {slot}", actor=f"dept-{slot}", role=Role.DEPARTMENT)
            except PetitionClosed:
                return False
            return True

        assert sum(run_together(len(own), close)) == 1
        history = store.get(petition_id).history
        assert [entry.action for entry in history].count(Action.CLOSED) == 1
    for other in (store, *own):
        other.dispose()


def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    """Several processes opening a new database at once: one applies each migration, the rest wait."""
    engines = [make_engine(database_url) for _ in range(6)]
    applied = run_together(len(engines), lambda slot: migrate(engines[slot]))
    assert sorted(len(versions) for versions in applied) == [0] * 5 + [LATEST]
    with engines[0].connect() as conn:
        assert current_version(conn) == LATEST
        assert conn.execute(text("SELECT count(*) FROM schema_migrations")).scalar_one() == LATEST
    for engine in engines:
        engine.dispose()


def test_an_unreachable_database_raises_database_unavailable() -> None:
    closed_port = free_port()  # nothing listens there
    with pytest.raises(DatabaseUnavailable):
        QueueStore(f"postgresql://triage@127.0.0.1:{closed_port}/none", pool=PoolOptions(connect_timeout=2))


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    QueueStore(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_existing_database_file_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    assert migrate(engine, target=1) == [1]  # a database created by the first release
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO petitions (text, masked_text, channel, received_at, due_at, created_at, updated_at, "
                "created_by, status, queue, model_version, predicted_domain, domain_confidence, needs_review, "
                "prediction) VALUES ('旧件', '旧件', 'visit', '2026-01-01 00:00:00.000000', "
                "'2026-01-16 00:00:00.000000', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', "
                "'old', 'queued', 'housing', 'v0', "
                '\'real_estate\', 0.9, 0, \'{"heads": {}, "needs_review": false, "explanation": []}\')'
            )
        )
    engine.dispose()

    store = QueueStore(url)  # the new release starts on the old file
    with store.engine.connect() as conn:
        assert current_version(conn) == LATEST
        indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list('petitions')")}
    assert "ix_petitions_status_due" in indexes
    page, total = store.list_queue("housing")
    assert total == 1 and page[0].text == "旧件" and page[0].received_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert store.submit(submission("新件")).petition_id == 2
    assert migrate(store.engine) == []  # idempotent
    store.dispose()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'future.db'}"
    QueueStore(url).dispose()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_migrations VALUES (99, 'from the future', '2030-01-01 00:00:00')"))
    with pytest.raises(MigrationError):
        migrate(engine)
    engine.dispose()


def test_every_decision_on_a_suggestion_is_a_labelled_example(store: QueueStore, tmp_path: Path) -> None:
    from training.dataset import load_labelled
    from triage.feedback import final_decisions, write_decisions

    review = submission("物业乱收费，电话13812345678", prediction=prediction(confident=False))
    accepted = store.submit(review).petition_id
    corrected = store.submit(submission("路灯不亮", prediction=prediction(confident=False))).petition_id
    auto = store.submit(submission("小区停车难")).petition_id
    store.route(accepted, "housing", actor="clerk-1", role="clerk")
    assert store.route(accepted, "housing", actor="clerk-1", role="clerk").decision is None  # changes nothing
    store.route(corrected, "urban_management", domain="other", actor="clerk-1", role="clerk")
    store.route(corrected, "transport", domain="other", actor="clerk-2", role="admin")  # later re-route
    store.route(auto, "public_security", domain="other", actor="clerk-2", role="clerk")
    decisions = store.feedback()
    assert [(item.petition_id, item.decision, item.auto_routed) for item in decisions] == [
        (accepted, "accepted", False),
        (corrected, "corrected", False),
        (corrected, "rerouted", False),
        (auto, "rerouted", True),
    ]
    assert decisions[2].previous_department == "urban_management" and decisions[2].actor == "clerk-2"
    assert all("13812345678" not in item.masked_text for item in decisions)
    final = final_decisions(decisions)
    assert [(item.petition_id, item.corrected_department) for item in final] == [
        (accepted, "housing"),
        (corrected, "transport"),
        (auto, "public_security"),
    ]
    path = tmp_path / "corrections.csv"
    assert write_decisions(path, final) == 3
    rows = load_labelled([path])
    assert rows.departments == ["housing", "transport", "public_security"] and not rows.invalid
    assert "【电话】" in rows.texts[0]


def test_the_similarity_index_catches_up_in_batches_and_stops_at_a_short_read(store: QueueStore) -> None:
    """Every classify and submit catches the index up first: one read when it is current, and no extra read
    after the last, short batch (that read was per request on the hot path)."""
    texts = [f"第{n}号楼电梯坏了三个月物业不修，业主多次反映无果" for n in range(5)]
    store.submit_many([submission(text=text, external_id=f"e-{n}") for n, text in enumerate(texts)], now=T0)
    reads: list[int] = []
    texts_after = store.texts_after

    def counted(last_id: int, limit: int = 10_000) -> list[tuple[int, str]]:
        rows = texts_after(last_id, limit)
        reads.append(len(rows))
        return rows

    store.texts_after = counted  # type: ignore[method-assign]
    similar = SimilarPetitions(store, batch=2)
    assert similar.sync() == 5 and reads == [2, 2, 1]
    assert similar.sync() == 0 and reads == [2, 2, 1, 0]
    store.submit(submission(text="第9号楼电梯坏了三个月物业不修，业主多次反映无果", external_id="e-9"), now=T0)
    assert similar.sync() == 1 and reads == [2, 2, 1, 0, 1]
    found = similar.related(texts[0], limit=10, min_score=0.1)
    assert len(similar.index) == 6 and len(found.similar) == 6  # every stored petition indexed once
