"""The sensors bring the candles along: new Bronze data runs the candles of exactly the (date, product) partitions it
touched, after Silver in the same run; a Silver change made elsewhere (a manual run) has the Silver -> Gold sensor
request them; a Silver partition whose blocking checks failed requests none."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from crypto_assets.contracts.tables import candles_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_definitions, build_resources
from crypto_assets.orchestration.silver import silver_assets
from crypto_assets.tools.inprocess import execute, requested, tick
from crypto_assets_tests.support.records import break_silver_dedup, send_records, ticker_frame, trades_frame, ts

D1, D2 = "2026-09-01", "2026-09-02"
CANDLES = ["gold_candles_1m", "gold_candles_1h"]


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "dagster"
    path.mkdir()
    with DagsterInstance.local_temp(str(path)) as inst:
        yield inst


def _send(s, records):
    topic = {"trades": s.trades_topic, "ticker": s.ticker_topic}
    send_records(s.kafka_bootstrap, [(topic[k], key, v, ts(when)) for k, key, v, when in records])


def _bronze(s, instance, day):
    assert materialize(bronze_assets(s), partition_key=day, resources=build_resources(s), instance=instance).success


def _sensor(s, name):
    return build_definitions(s).resolve_sensor_def(name)


def _candles(result) -> list[tuple[str, str]]:
    return [(k, p) for k, p in requested(result) if k in CANDLES]


def _trade_counts(s, interval: str) -> dict[tuple[str, str], int]:
    """(event_date, product) -> trades the candles table holds."""
    rows = snapshots.read(Lake.from_settings(s).table(candles_table_def(interval))).to_pylist()
    out: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["event_date"].isoformat(), r["product_id"])
        out[key] = out.get(key, 0) + r["trade_count"]
    return out


def test_new_bronze_runs_the_candles_of_exactly_the_touched_partitions(fresh_settings, instance):
    s = fresh_settings
    _send(s, [
        ("trades", "BTC-USD", trades_frame("BTC-USD", [1, 2], f"{D1}T10:00:00Z"), f"{D1}T10:00:00.5Z"),
        ("trades", "ETH-USD", trades_frame("ETH-USD", [7], f"{D1}T10:00:01Z"), f"{D1}T10:00:01.5Z"),
        ("ticker", "BTC-USD", ticker_frame("BTC-USD", f"{D1}T10:00:00Z"), f"{D1}T10:00:00.2Z"),
    ])
    _bronze(s, instance, D1)
    first = tick(_sensor(s, "bronze_to_silver"), s, instance, None)
    assert _candles(first) == [(c, f"{D1}|{p}") for c in sorted(CANDLES) for p in ("BTC-USD", "ETH-USD")]
    for r in first.run_requests:  # in Silver's run, after Silver and Gold: Silver's blocking checks hold them
        assert [k.to_user_string() for k in r.asset_selection][-2:] == CANDLES
    assert all(o.success for o in execute(first, s, instance))
    assert _trade_counts(s, "1m") == _trade_counts(s, "1h") == {(D1, "BTC-USD"): 2, (D1, "ETH-USD"): 1}
    # The candles read the Silver change in its own run: the Silver -> Gold sensor does not ask for them again.
    assert _candles(tick(_sensor(s, "silver_to_gold"), s, instance, None)) == []

    # On D2: a late BTC trade of D1 and a BTC trade of D2. ETH-USD is untouched: its candles are not requested.
    _send(s, [
        ("trades", "BTC-USD", trades_frame("BTC-USD", [3], f"{D1}T23:59:59.9Z"), f"{D2}T00:00:02Z"),
        ("trades", "BTC-USD", trades_frame("BTC-USD", [4], f"{D2}T00:01:00Z"), f"{D2}T00:01:00.5Z"),
    ])
    _bronze(s, instance, D2)
    second = tick(_sensor(s, "bronze_to_silver"), s, instance, first.cursor)
    assert _candles(second) == [(c, f"{d}|BTC-USD") for c in sorted(CANDLES) for d in (D1, D2)]
    assert all(o.success for o in execute(second, s, instance))
    assert _trade_counts(s, "1h") == {(D1, "BTC-USD"): 3, (D1, "ETH-USD"): 1, (D2, "BTC-USD"): 1}


def _run_silver(s, instance, day, raise_on_error=True):
    return materialize(silver_assets(s)[:1], partition_key=MultiPartitionKey({"event_date": day, "product_id": "BTC-USD"}),
                       resources=build_resources(s), instance=instance, raise_on_error=raise_on_error)


def test_a_silver_change_made_elsewhere_requests_its_candles_unless_blocked(fresh_settings, instance, monkeypatch):
    s = fresh_settings
    _send(s, [("trades", "BTC-USD", trades_frame("BTC-USD", [1, 2], f"{D1}T10:00:00Z"), f"{D1}T10:00:00.5Z"),
              ("trades", "BTC-USD", trades_frame("BTC-USD", [2], f"{D1}T10:00:00Z", event_type="snapshot"),
               f"{D1}T10:05:00Z")])  # a duplicate: only a broken dedup lets it through
    _bronze(s, instance, D1)

    break_silver_dedup(monkeypatch)
    result = _run_silver(s, instance, D1, raise_on_error=False)
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()}["unique_trade_id"] is False
    blocked = tick(_sensor(s, "silver_to_gold"), s, instance, None)
    assert _candles(blocked) == []

    monkeypatch.undo()
    _run_silver(s, instance, D1)  # a manual Silver run, Gold and candles not in it
    wanted = tick(_sensor(s, "silver_to_gold"), s, instance, blocked.cursor)
    assert _candles(wanted) == [(c, f"{D1}|BTC-USD") for c in sorted(CANDLES)]
    run = next(r for r in wanted.run_requests if CANDLES[0] in [k.to_user_string() for k in r.asset_selection])
    assert [k.to_user_string() for k in run.asset_selection] == CANDLES  # 1m, then 1h, in one run
    assert all(o.success for o in execute(wanted, s, instance))
    assert _trade_counts(s, "1m") == {(D1, "BTC-USD"): 2}
    # Already read: a tick from the start asks for nothing more.
    assert _candles(tick(_sensor(s, "silver_to_gold"), s, instance, None)) == []
