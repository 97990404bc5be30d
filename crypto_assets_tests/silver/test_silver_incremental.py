"""Incremental Silver equals a full rebuild: the same Bronze split at random into 1, 3 and 20 commits, with
Silver brought up to date after each (as the sensor does), gives the Silver and quarantine tables and the
counts a full rebuild from all of Bronze gives, row for row and value for value. The input has duplicates
(snapshot re-sends after a reconnect, conflicting copies, a copy ingested before the one already kept),
out-of-order trade ids, late trades across midnight, the day before's last seconds, rejects and garbage."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.tables import bronze_table, quarantine_table_def, silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import Lake
from crypto_assets.silver.build import build_silver
from crypto_assets_tests.silver.test_silver_transforms import bronze, frame, trade
from crypto_assets_tests.support.records import ticker_frame

DAY = date(2026, 3, 10)
DAYS = [DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)]
PRODUCTS = ["BTC-USD", "ETH-USD", "UNKNOWN"]
RULES = SilverRules(allowed_lateness_days=1)
UTC = timezone.utc


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def trade_records(seed: int) -> list[tuple]:
    """(key, value, ingest time) in Kafka order (one partition): ingest times mostly rising."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 9, 23, 58, tzinfo=UTC)
    out, sent = [], {p: [] for p in PRODUCTS[:2]}
    clock = start
    next_id = {"BTC-USD": 1000, "ETH-USD": 5000}
    for i in range(260):
        clock += timedelta(seconds=rng.choice([1, 7, 60, 900, 1800]))
        if clock > datetime(2026, 3, 11, 0, 10, tzinfo=UTC):
            break
        product = rng.choice(PRODUCTS[:2])
        roll = rng.random()
        if roll < 0.12 and sent[product]:  # a snapshot re-sent after a reconnect: copies of recent trades
            again = sent[product][-rng.randint(1, 4):]
            out.append((product, frame(*again, event_type="snapshot", when=_iso(clock)), clock))
            continue
        if roll < 0.16 and sent[product]:  # a conflicting copy: same trade id, another price
            copy = dict(rng.choice(sent[product]), price="1.5")
            out.append((product, frame(copy, when=_iso(clock)), clock))
            continue
        if roll < 0.19:
            out.append((product if rng.random() < 0.7 else None, rng.choice(["{not json", "garbage"]), clock))
            continue
        trades = []
        for _ in range(rng.randint(1, 4)):
            next_id[product] += rng.choice([1, 1, 1, 2])
            tid = next_id[product] - (3 if rng.random() < 0.1 else 0)  # now and then an id out of order
            event = clock - timedelta(milliseconds=rng.randint(0, 900))
            if rng.random() < 0.05:  # late: an event just before midnight, ingested after it
                event = datetime.combine(clock.date(), datetime.min.time(), UTC) - timedelta(milliseconds=rng.randint(1, 999))
            price = "-1" if rng.random() < 0.05 else f"{rng.uniform(100, 200):.2f}"
            if rng.random() < 0.03:
                event = clock - timedelta(days=3)  # too late for its day
            trades.append(trade(pid=product, tid=str(tid), price=price, side=rng.choice(["BUY", "SELL"]),
                                time=_iso(event)))
        sent[product].extend(trades)
        out.append((product, frame(*trades, when=_iso(clock)), clock))
    # A copy ingested (by the exchange's clock skew) before the copy already in Kafka: the copy kept changes.
    first = next(r for r in out if r[0] == "BTC-USD" and r[1].startswith("{") and '"update"' in r[1])
    out.append((first[0], first[1], first[2] - timedelta(milliseconds=1)))
    return [(k, v, _iso(t)) for k, v, t in out]


def ticker_records(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    clock = datetime(2026, 3, 9, 23, 58, tzinfo=UTC)
    out, sent = [], []
    for seq in range(200):
        clock += timedelta(seconds=rng.choice([1, 30, 900, 1800]))
        product = rng.choice(PRODUCTS[:2])
        if rng.random() < 0.15 and sent:  # the same content again (a re-send): a duplicate
            out.append(rng.choice(sent)[:2] + (clock,))
            continue
        price = "0" if rng.random() < 0.05 else f"{rng.uniform(100, 200):.2f}"
        event = clock - timedelta(milliseconds=rng.randint(0, 500))
        if rng.random() < 0.05:
            event = datetime.combine(clock.date(), datetime.min.time(), UTC) - timedelta(milliseconds=5)
        record = (product, ticker_frame(product, _iso(event), seq=seq, price=price), clock)
        sent.append(record)
        out.append(record)
    return [(k, v, _iso(t)) for k, v, t in out]


def _bronze_rows(spark, records, kind: str, scratch) -> pa.Table:
    path = scratch / f"bronze-{uuid.uuid4().hex}"
    bronze(spark, records, kind).coalesce(1).write.parquet(str(path))
    t = bronze_table(kind)
    return pq.read_table(path).select(t.schema.names).cast(t.schema).sort_by("offset")


def _bring_up_to_date(lake: Lake, kind: str) -> dict:
    return {(d, p): build_silver(lake, kind, d, [p], RULES, require_bronze_day=False, run_id=f"run-{uuid.uuid4().hex[:6]}")[p]
            for d in DAYS for p in PRODUCTS}


def _rows(lake: Lake, t, d: date, p: str) -> list[tuple]:
    rows = snapshots.read(lake.table(t), {"product_id": p, "event_date": d}).to_pylist()
    return sorted((tuple(r.values()) for r in rows), key=repr)


COUNTS = ("rows", "duplicates", "conflicting_duplicates", "quarantined", "quarantined_by_reason", "window_items",
          "other_partitions", "duplicate_keys", "null_keys", "non_positive", "trade_id_gaps", "min_event_time",
          "max_event_time", "head")


@pytest.mark.parametrize("kind", ["trades", "ticker"])
@pytest.mark.parametrize("increments", [1, 3, 20])
def test_any_split_into_increments_gives_the_full_rebuild(spark, tmp_path, kind, increments):
    records = trade_records(seed=7) if kind == "trades" else ticker_records(seed=11)
    rows = _bronze_rows(spark, records, kind, tmp_path)
    t = bronze_table(kind)

    full_lake = Lake(str(tmp_path / "full"))
    snapshots.append(full_lake.catalog_config, t, rows, Provenance(asset=f"bronze_{kind}", run_id="all"))
    full = _bring_up_to_date(full_lake, kind)
    assert all(s.mode == "full" for s in full.values())
    assert sum(s.rows for s in full.values()) > 50 and sum(s.duplicates for s in full.values()) > 5

    lake = Lake(str(tmp_path / f"in-{increments}"))
    cuts = sorted(random.Random(increments).sample(range(1, rows.num_rows), increments - 1))
    modes, reasons = [], set()
    for lo, hi in zip([0, *cuts], [*cuts, rows.num_rows]):
        snapshots.append(lake.catalog_config, t, rows.slice(lo, hi - lo), Provenance(asset=f"bronze_{kind}"))
        last = _bring_up_to_date(lake, kind)
        modes += [s.mode for s in last.values()]
        reasons |= {s.full_reason for s in last.values() if s.mode == "full"}
    if increments > 1:
        assert modes.count("incremental") > len(modes) // 2  # most runs went on from their state
        if kind == "trades":  # the copy ingested before the one kept arrived in a later increment
            assert "an earlier-ingested copy of a row already in Silver arrived" in reasons

    for (d, p), want in full.items():
        got = last[(d, p)]
        for name in COUNTS:
            assert getattr(got, name) == getattr(want, name), (d, p, name)
        assert got.reconciles
        for tdef in (silver_table_def(kind), quarantine_table_def(kind)):
            assert _rows(lake, tdef, d, p) == _rows(full_lake, tdef, d, p), (tdef.identifier, d, p)


def test_a_run_with_nothing_new_commits_nothing(spark, tmp_path):
    rows = _bronze_rows(spark, trade_records(seed=3), "trades", tmp_path)
    lake = Lake(str(tmp_path / "lake"))
    snapshots.append(lake.catalog_config, bronze_table("trades"), rows, Provenance(asset="bronze_trades"))
    first = _bring_up_to_date(lake, "trades")
    tables = [silver_table_def("trades"), quarantine_table_def("trades")]
    before = [len(lake.table(t).snapshots()) for t in tables]
    current = snapshots.snapshot_id(lake.table(tables[0]))
    again = _bring_up_to_date(lake, "trades")
    assert [len(lake.table(t).snapshots()) for t in tables] == before
    for key, s in again.items():
        assert (s.mode, s.bronze_rows_new, s.rows_appended, s.snapshot_id) == ("incremental", 0, 0, current)
        assert (s.rows, s.window_items, s.duplicates, s.quarantined) == (
            first[key].rows, first[key].window_items, first[key].duplicates, first[key].quarantined)
        assert s.reconciles


def _split_lake(spark, tmp_path, parts: int = 3):
    """A lake whose Bronze got the first of `parts` slices, Silver built from it; the other slices returned."""
    rows = _bronze_rows(spark, trade_records(seed=5), "trades", tmp_path)
    lake = Lake(str(tmp_path / "lake"))
    n = rows.num_rows // parts
    slices = [rows.slice(i * n, n if i < parts - 1 else rows.num_rows - i * n) for i in range(parts)]
    snapshots.append(lake.catalog_config, bronze_table("trades"), slices[0], Provenance(asset="bronze_trades"))
    _bring_up_to_date(lake, "trades")
    return lake, rows, slices[1:]


def _same_as_full(lake: Lake, rows: pa.Table, tmp_path) -> None:
    full_lake = Lake(str(tmp_path / f"full-{uuid.uuid4().hex[:6]}"))
    snapshots.append(full_lake.catalog_config, bronze_table("trades"), rows, Provenance(asset="bronze_trades"))
    _bring_up_to_date(full_lake, "trades")
    for d in DAYS:
        for p in PRODUCTS:
            for tdef in (silver_table_def("trades"), quarantine_table_def("trades")):
                assert _rows(lake, tdef, d, p) == _rows(full_lake, tdef, d, p), (tdef.identifier, d, p)


def test_a_partition_whose_state_cannot_be_trusted_is_rebuilt_with_one_warning(spark, tmp_path, caplog, monkeypatch):
    lake, rows, (second, third) = _split_lake(spark, tmp_path)
    config = lake.catalog_config
    snapshots.append(config, bronze_table("trades"), second, Provenance(asset="bronze_trades"))

    # A run that stops between its quarantine commit and its Silver commit.
    import crypto_assets.silver.build as build

    real_append, appended = snapshots.append, []

    def dies_at_silver(config, t, *args, **kwargs):
        if t.identifier == "silver.trades" and appended:
            appended.clear()
            raise RuntimeError("killed")
        appended.extend([t.identifier] if t.identifier == "quarantine.trades" else [])
        return real_append(config, t, *args, **kwargs)

    monkeypatch.setattr(build.snapshots, "append", dies_at_silver)
    died = 0
    for d in DAYS:
        for p in PRODUCTS:
            try:
                build_silver(lake, "trades", d, [p], RULES, require_bronze_day=False)
            except RuntimeError:
                died += 1
    assert died
    monkeypatch.undo()
    caplog.clear()
    with caplog.at_level("WARNING", logger="crypto_assets.silver.build"):
        after = _bring_up_to_date(lake, "trades")
    killed = [s for s in after.values() if "(a run stopped between its two commits" in s.full_reason]
    assert killed and all(s.mode == "full" and s.reconciles for s in killed)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == len(killed) and all("rebuilding the partition in full: the partition holds" in x for x in lines)

    # Other rules (a lateness setting changed): every written partition is rebuilt.
    changed = build_silver(lake, "trades", DAY, ["BTC-USD"], SilverRules(allowed_lateness_days=2),
                           require_bronze_day=False)["BTC-USD"]
    assert (changed.mode, changed.full_reason) == ("full", "the Silver rules changed since the partition was written")
    _bring_up_to_date(lake, "trades")  # back to the test's rules (rebuilt again)

    # A writer that keeps no state (an engine) adds a row to a partition.
    held = snapshots.read(lake.table(silver_table_def("trades")), {"product_id": "ETH-USD", "event_date": DAY})
    snapshots.append(config, silver_table_def("trades"), held.slice(0, 1), Provenance(asset="someone_else"))
    foreign = build_silver(lake, "trades", DAY, ["ETH-USD"], RULES, require_bronze_day=False)["ETH-USD"]
    assert foreign.mode == "full" and "where its state counts" in foreign.full_reason
    assert foreign.duplicate_keys == 0 and foreign.reconciles  # the rebuild dropped the copy

    # The Bronze snapshot a state names was expired (maintenance keeps a bounded history).
    snapshots.append(config, bronze_table("trades"), third, Provenance(asset="bronze_trades"))
    bronze = lake.table(bronze_table("trades"))
    bronze.maintenance.expire_snapshots().older_than(datetime.now(UTC) + timedelta(seconds=1)).commit()
    expired = _bring_up_to_date(lake, "trades")
    assert any("was expired" in s.full_reason for s in expired.values())
    assert all(s.reconciles for s in expired.values())
    _same_as_full(lake, rows, tmp_path)


def test_a_partition_that_failed_a_blocking_check_is_rebuilt_by_the_next_run(spark, tmp_path, monkeypatch):
    from crypto_assets_tests.support.records import break_silver_dedup

    lake, rows, (second, third) = _split_lake(spark, tmp_path)
    snapshots.append(lake.catalog_config, bronze_table("trades"), second, Provenance(asset="bronze_trades"))
    break_silver_dedup(monkeypatch)  # a broken incremental step: copies reach Silver
    broken = build_silver(lake, "trades", DAY, ["BTC-USD"], RULES, require_bronze_day=False)["BTC-USD"]
    assert broken.mode == "incremental" and broken.duplicate_keys > 0  # the blocking uniqueness check fails
    monkeypatch.undo()
    snapshots.append(lake.catalog_config, bronze_table("trades"), third, Provenance(asset="bronze_trades"))
    fixed = build_silver(lake, "trades", DAY, ["BTC-USD"], RULES, require_bronze_day=False)["BTC-USD"]
    assert (fixed.mode, fixed.full_reason, fixed.duplicate_keys) == (
        "full", "the partition failed a blocking check when it was last written", 0)
    _bring_up_to_date(lake, "trades")
    _same_as_full(lake, rows, tmp_path)


def test_the_state_survives_expiry_of_silver_snapshots_and_old_days_states_are_dropped(spark, tmp_path):
    from crypto_assets.lake.partition_state import KEEP_DAYS
    from crypto_assets.silver.state import PREFIX

    lake, rows, (second, third) = _split_lake(spark, tmp_path)
    for t in (silver_table_def("trades"), quarantine_table_def("trades")):
        lake.table(t).maintenance.expire_snapshots().older_than(datetime.now(UTC) + timedelta(seconds=1)).commit()
        assert len(lake.table(t).snapshots()) == 1
    snapshots.append(lake.catalog_config, bronze_table("trades"), second, Provenance(asset="bronze_trades"))
    after = _bring_up_to_date(lake, "trades")
    assert all(s.mode == "incremental" for s in after.values()), {k: s.full_reason for k, s in after.items()}

    # A partition of a day far later: the states of days more than KEEP_DAYS before it go.
    later = DAY + timedelta(days=KEEP_DAYS + 2)
    build_silver(lake, "trades", later, ["BTC-USD"], RULES, require_bronze_day=False)
    keys = [k for k in lake.table(silver_table_def("trades")).properties if k.startswith(PREFIX)]
    assert keys == [f"{PREFIX}{later.isoformat()}|BTC-USD"]
    snapshots.append(lake.catalog_config, bronze_table("trades"), third, Provenance(asset="bronze_trades"))
    again = _bring_up_to_date(lake, "trades")  # their partitions are rebuilt, whole and right
    assert all(s.mode == "full" for s in again.values())
    _same_as_full(lake, rows, tmp_path)
