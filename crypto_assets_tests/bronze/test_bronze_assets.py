"""Bronze assets on the real broker and Spark: exactly the day's records, idempotent, nothing dropped."""

from __future__ import annotations

import json

from dagster import DagsterInstance, materialize

from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.spark import lake_session
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets_tests.support.records import send_records, ticker_frame, trades_frame, ts

DAY = "2026-03-10"


def _materialize(settings, day=DAY, kinds=("trades", "ticker"), raise_on_error=True):
    assets = [a for a in bronze_assets(settings) if a.key.path[-1].split("_", 1)[1] in kinds]
    return materialize(
        assets, partition_key=day, resources=build_resources(settings),
        instance=DagsterInstance.ephemeral(), raise_on_error=raise_on_error,
    )


def _rows(spark, settings, table="kafka_trades", day=DAY):
    session = lake_session(spark, LakeResource.from_settings(settings).catalog_config)
    return session.table(f"lake.bronze.{table}").where(f"ingest_date = DATE'{day}'")


def _table(settings, kind="trades"):
    return LakeResource.from_settings(settings).table(bronze_table(kind))


def _metadata(result, name):
    for ev in result.get_asset_materialization_events():
        if ev.asset_key.path[-1] == name:
            return {k: v.value for k, v in ev.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {name}")


def test_bronze_day_holds_exactly_the_days_records_and_rerun_changes_nothing(fresh_settings, spark):
    s = fresh_settings
    before = [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [1], "2026-03-09T23:59:59.9Z"), ts("2026-03-09T23:59:59.950Z"))]
    inside = [
        (s.trades_topic, p, trades_frame(p, [10 + i], f"2026-03-10T{h:02d}:00:00Z", seq=i), ts(f"2026-03-10T{h:02d}:00:00.100Z"))
        for i, (p, h) in enumerate([("BTC-USD", 0), ("ETH-USD", 5), ("BTC-USD", 12), ("ETH-USD", 23)])
    ]
    # Last millisecond of the day belongs to it; the first of the next day does not.
    inside.append((s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [99], "2026-03-10T23:59:59.999Z"), ts("2026-03-10T23:59:59.999Z")))
    after = [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [100], "2026-03-11T00:00:00Z"), ts("2026-03-11T00:00:00.000Z"))]
    offsets = send_records(s.kafka_bootstrap, before + inside + after)
    expected = sorted(offsets[len(before):len(before) + len(inside)])

    result = _materialize(s, kinds=("trades",))
    md = _metadata(result, "bronze_trades")
    rows = _rows(spark, s)
    got = sorted((r.partition, r.offset) for r in rows.select("partition", "offset").collect())
    assert got == expected
    assert md["rows"] == len(inside)
    assert md["malformed_records"] == 0
    assert md["bytes_written"] > 0
    by_partition = {}
    for p, o in expected:
        lo, hi = by_partition.get(p, (o, o))
        by_partition[p] = (min(lo, o), max(hi, o))
    assert md["kafka_offsets"] == {str(p): {"first": lo, "last": hi} for p, (lo, hi) in by_partition.items()}

    # One commit, named in the metadata, saying what it wrote and which Silver partitions the rows feed.
    table = _table(s)
    snap = table.current_snapshot()
    assert md["snapshot_id"] == str(snap.snapshot_id) and md["files"] >= 1
    p = Provenance.of(snap)
    assert (p.asset, p.partition, p.extra["writer"]) == ("bronze_trades", DAY, "batch") and p.run_id
    assert json.loads(p.extra["partitions"]) == [[DAY, "BTC-USD", 3], [DAY, "ETH-USD", 2]]
    assert json.loads(p.extra["offsets"]) == {str(k): [lo, hi] for k, (lo, hi) in by_partition.items()}

    first = sorted(tuple(r) for r in rows.drop("ingest_date").collect())
    again = _metadata(_materialize(s, kinds=("trades",)), "bronze_trades")
    second = sorted(tuple(r) for r in _rows(spark, s).drop("ingest_date").collect())
    assert second == first  # same rows: no duplicate, no loss
    table = _table(s)
    assert again["snapshot_id"] == str(table.current_snapshot().snapshot_id) != md["snapshot_id"]
    assert json.loads(Provenance.of(table.current_snapshot()).extra["partitions"]) == []  # nothing new to read


def test_bronze_parses_envelope_and_trades_as_received(fresh_settings, spark):
    s = fresh_settings
    frame = trades_frame("ETH-USD", [22381690, 22381691], "2026-03-10T07:13:31.158696693Z", seq=2)
    send_records(s.kafka_bootstrap, [(s.trades_topic, "ETH-USD", frame, ts("2026-03-10T07:13:31.160Z"))])
    tick = ticker_frame("BTC-USD", "2026-03-10T05:35:45.435813533Z", seq=16)
    send_records(s.kafka_bootstrap, [(s.ticker_topic, "BTC-USD", tick, ts("2026-03-10T05:35:45.5Z"))])
    _materialize(s)

    row = _rows(spark, s).collect()[0]
    assert row.value.decode() == frame  # raw bytes kept exactly
    assert (row.channel, row.envelope_timestamp, row.sequence_num, row.event_type, row.product_id) == (
        "market_trades", "2026-03-10T07:13:31.158696693Z", 2, "update", "ETH-USD")
    assert [t.trade_id for t in row.trades] == ["22381691", "22381690"]  # newest first, strings as sent
    assert row.trades[0].price == "64589.41" and row.trades[0].side == "SELL"
    assert (row.source, row.connection_id, row.is_malformed, row.malformed_reason) == ("test", "conn-1", False, None)
    assert str(row.kafka_timestamp) == "2026-03-10 07:13:31.160000"

    t = _rows(spark, s, "kafka_ticker").collect()[0]
    assert (t.channel, t.product_id, t.sequence_num) == ("ticker", "BTC-USD", 16)
    assert t.tickers[0].best_ask == "64281.71" and t.tickers[0].volume_24_h == "3974.98800786"


def test_malformed_records_are_kept_raw_flagged_and_counted(fresh_settings, spark):
    s = fresh_settings
    when = ts("2026-03-10T10:00:00Z")
    bad = {
        "not_json": b"\x00\xffgarbage{",
        "missing_channel": b'{"timestamp":"2026-03-10T10:00:00Z","events":[]}',
        "unexpected_channel": ticker_frame("BTC-USD", "2026-03-10T10:00:00Z").encode(),
        "missing_events": b'{"channel":"market_trades","timestamp":"2026-03-10T10:00:00Z","sequence_num":3}',
        "no_trades": b'{"channel":"market_trades","timestamp":"2026-03-10T10:00:00Z","sequence_num":3,"events":[{"type":"update","trades":[]}]}',
        "empty_value": b"",
    }
    good = trades_frame("BTC-USD", [5], "2026-03-10T10:00:00Z")
    send_records(s.kafka_bootstrap, [(s.trades_topic, "BTC-USD", v, when) for v in bad.values()]
                 + [(s.trades_topic, "BTC-USD", good, when)])

    md = _metadata(_materialize(s, kinds=("trades",)), "bronze_trades")
    assert md["rows"] == len(bad) + 1
    assert md["malformed_records"] == len(bad)
    assert md["malformed_by_reason"] == {reason: 1 for reason in bad}
    rows = {r.malformed_reason: r for r in _rows(spark, s).collect()}
    assert bytes(rows["not_json"].value) == bad["not_json"]
    assert rows["not_json"].channel is None and rows["not_json"].trades is None or rows["not_json"].trades == []
    assert rows[None].is_malformed is False


def test_empty_day_writes_no_partition(fresh_settings, spark):
    md = _metadata(_materialize(fresh_settings, day="2026-01-01", kinds=("trades",)), "bronze_trades")
    assert md["rows"] == 0 and md["snapshot_id"] == ""
    assert _table(fresh_settings).current_snapshot() is None  # nothing committed


def test_an_empty_window_empties_a_written_day_in_one_commit(fresh_settings, spark):
    from dataclasses import replace
    from datetime import date

    from crypto_assets.bronze.build import build_bronze_day
    from crypto_assets.contracts.partitioning import SilverRules
    from crypto_assets.orchestration.resources.kafka import KafkaResource

    s = fresh_settings
    send_records(s.kafka_bootstrap, [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [1], f"{DAY}T10:00:00Z"),
                                      ts(f"{DAY}T10:00:00Z"))])
    _materialize(s, kinds=("trades",))
    assert _rows(spark, s).count() == 1
    kafka = KafkaResource.from_settings(s)

    class Empty:  # the same broker, but a window with nothing in it
        def __getattr__(self, name):
            return getattr(kafka, name)

        def offset_window(self, topic, start, end):
            window = kafka.offset_window(topic, start, end)
            return replace(window, start=dict(window.end))

    lake = LakeResource.from_settings(s)
    stats = build_bronze_day(spark, Empty(), lake, "trades", date.fromisoformat(DAY), SilverRules())
    assert stats.rows == 0 and _rows(spark, s).count() == 0
    snap = _table(s).current_snapshot()
    assert Provenance.of(snap).extra["partitions"] == "[]"  # the emptying commit feeds no Silver partition


def test_broker_down_fails_with_one_line_naming_address_and_command(fresh_settings):
    from crypto_assets_tests.conftest import free_port

    s = fresh_settings.replace(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    result = _materialize(s, kinds=("trades",), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert s.kafka_bootstrap in message and "crypto-pipeline kafka up" in message
    assert "\n" not in message


def test_missing_topic_names_the_topic(fresh_settings):
    s = fresh_settings.replace(trades_topic="no.such.topic")
    result = _materialize(s, kinds=("trades",), raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert "'no.such.topic'" in message and "does not exist" in message
