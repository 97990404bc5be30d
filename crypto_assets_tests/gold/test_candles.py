"""Candles through Dagster on a real lake: every 1m and 1h row equals an independent pandas resample of the Silver
data (minutes crossing midnight, equal trade times, a product without tickers, tickers without a quote, minutes
without trades absent), the checks pass on the real tables and fail on broken ones."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from crypto_assets.contracts.tables import candles_table_def
from crypto_assets.gold.candles_build import CandleStats, build_candles, measure
from crypto_assets.gold.candles_report import candles_report
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.candles import build_candle_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets_tests.gold.silver_writer import write_silver

D0, D = "2024-03-10", "2024-03-11"  # the trades run from 22:50 on D0 to 02:10 on D
PRODUCTS = ("BTC-USD", "ETH-USD")  # ETH-USD has no tickers at all
COLUMNS = ["window_start", "open", "high", "low", "close", "volume", "notional", "vwap", "trade_count", "buy_volume",
           "sell_volume", "last_best_bid", "last_best_ask", "mean_spread", "ticker_count"]
REL = 1e-12


def _silver_data(seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trades of two products across midnight, with bursts sharing one trade_time (trade ids out of time order
    among them), quiet gaps of several minutes, trades in the last second of D0 and the first of D; BTC-USD
    tickers, some at equal event times (ingestion order decides), some without a bid."""
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp(f"{D0} 22:50"), pd.Timestamp(f"{D} 02:10")
    frames, next_id = [], 1
    for product, base in zip(PRODUCTS, (60_000.0, 3_000.0)):
        seconds = np.sort(rng.uniform(0, (end - start).total_seconds(), 900))
        seconds = seconds[~((seconds > 1800) & (seconds < 2400))]  # 10 quiet minutes: absent, not zero-filled
        times = start + pd.to_timedelta((seconds * 1e6).astype(np.int64), unit="us")
        burst = pd.Timestamp(f"{D0} 23:59:59.999999")
        times = times.append(pd.DatetimeIndex([burst] * 3 + [pd.Timestamp(f"{D} 00:00:00")] * 2))
        n = len(times)
        ids = np.arange(next_id, next_id + n)
        ids[-5:] = ids[-5:][::-1]  # equal times: (trade_time, trade_id) order, not arrival order, decides
        next_id += n
        frames.append(pd.DataFrame({
            "product_id": product, "trade_id": ids, "trade_time": times,
            "price": np.round(base * np.exp(np.cumsum(rng.normal(0, 2e-4, n))), 2),
            "size": np.round(10 ** rng.uniform(-4, 0.5, n), 8), "side": rng.choice(["BUY", "SELL"], n)}))
    trades = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=1).reset_index(drop=True)
    k = 700
    event = start + pd.to_timedelta(np.sort(rng.integers(0, (end - start).total_seconds() * 1000, k)), unit="ms")
    event = event.append(pd.DatetimeIndex([pd.Timestamp(f"{D0} 23:59:59.5")] * 2))  # equal times at midnight
    k = len(event)
    bid = np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 2e-4, k))), 2)
    tickers = pd.DataFrame({
        "product_id": "BTC-USD", "event_time": event, "best_bid": bid, "best_ask": bid + np.round(rng.uniform(0.01, 5, k), 2),
        "best_bid_quantity": 1.0, "best_ask_quantity": 1.0, "ticker_seq": np.arange(k)})
    tickers.loc[rng.random(k) < 0.05, "best_bid"] = np.nan  # no quote: not part of the quote columns
    return trades, tickers.sample(frac=1.0, random_state=2).reset_index(drop=True)


def _reference(trades: pd.DataFrame, tickers: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Candles by pandas resample, independently of the code under test. For 1h the quote columns cover the
    tickers of the minutes that hold trades (the 1h table is rolled up from the 1m one)."""
    out = []
    for product, t in trades.groupby("product_id"):
        t = t.sort_values(["trade_time", "trade_id"]).assign(notional=lambda x: x["price"] * x["size"])
        t["buy_volume"] = t["size"].where(t["side"] == "BUY", 0.0)
        t["sell_volume"] = t["size"].where(t["side"] == "SELL", 0.0)
        bins = t.set_index("trade_time").resample(freq)
        c = pd.DataFrame({
            "open": bins["price"].first(), "high": bins["price"].max(), "low": bins["price"].min(),
            "close": bins["price"].last(), "volume": bins["size"].sum(), "notional": bins["notional"].sum(),
            "trade_count": bins["trade_id"].count(), "buy_volume": bins["buy_volume"].sum(),
            "sell_volume": bins["sell_volume"].sum()})
        assert freq != "1min" or (c["trade_count"] == 0).any()  # the data has minutes without trades ...
        c = c[c["trade_count"] > 0]  # ... which have no candle
        c["vwap"] = c["notional"] / c["volume"]
        q = tickers[(tickers["product_id"] == product) & tickers["best_bid"].notna() & tickers["best_ask"].notna()]
        minutes_with_trades = set(t["trade_time"].dt.floor("1min"))
        q = q[q["event_time"].dt.floor("1min").isin(minutes_with_trades)]
        q = q.sort_values(["event_time", "ticker_seq"]).assign(spread=lambda x: x["best_ask"] - x["best_bid"])
        qb = q.set_index("event_time").resample(freq)
        quotes = pd.DataFrame({"last_best_bid": qb["best_bid"].last(), "last_best_ask": qb["best_ask"].last(),
                               "mean_spread": qb["spread"].mean(), "ticker_count": qb["spread"].count()})
        c = c.join(quotes, how="left")
        c["ticker_count"] = c["ticker_count"].fillna(0).astype("int64")
        out.append(c.rename_axis("window_start").reset_index().assign(product_id=product))
    ref = pd.concat(out, ignore_index=True)
    ref["event_date"] = ref["window_start"].dt.date
    return ref.sort_values(["product_id", "window_start"]).reset_index(drop=True)


def _table(settings, interval: str) -> pd.DataFrame:
    rows = snapshots.read(Lake.from_settings(settings).table(candles_table_def(interval))).to_pandas()
    rows["window_start"] = rows["window_start"].dt.tz_convert(None)
    return rows.sort_values(["product_id", "window_start"]).reset_index(drop=True)


def _assert_equal(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(found.columns) == [*COLUMNS, "product_id", "event_date"]
    assert len(found) == len(expected)
    for c in ("window_start", "trade_count", "ticker_count", "product_id", "event_date", "open", "high", "low", "close",
              "last_best_bid", "last_best_ask"):
        assert found[c].tolist() == expected[c].tolist() or np.allclose(  # NaN == NaN for the quote columns
            found[c].to_numpy(float), expected[c].to_numpy(float), rtol=0, atol=0, equal_nan=True), c
    for c in ("volume", "notional", "vwap", "buy_volume", "sell_volume", "mean_spread"):
        assert np.allclose(found[c].to_numpy(float), expected[c].to_numpy(float), rtol=REL, atol=0, equal_nan=True), c


@pytest.fixture
def lake_with_candles(base_settings, tmp_path):
    s = base_settings.replace(lake_root=str(tmp_path / "lake"))
    trades, tickers = _silver_data()
    write_silver(None, s.lake_root, trades, tickers)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("product_id", list(PRODUCTS))
    checks = {}
    for day in (D0, D):
        for product in PRODUCTS:
            result = materialize(build_candle_assets(s), partition_key=MultiPartitionKey(
                {"event_date": day, "product_id": product}), resources=build_resources(s), instance=instance)
            assert result.success
            for c in result.get_asset_check_evaluations():
                checks[(c.asset_key.to_user_string(), day, product, c.check_name)] = c.passed
    return s, trades, tickers, checks


def test_candles_equal_a_pandas_resample_of_silver(lake_with_candles):
    s, trades, tickers, checks = lake_with_candles
    assert len(checks) == 2 * 2 * 2 * 4 and all(checks.values()), checks
    minutes, hours = _table(s, "1m"), _table(s, "1h")
    expected = _reference(trades, tickers, "1min")
    _assert_equal(minutes, expected)
    _assert_equal(hours, _reference(trades, tickers, "1h"))

    # Midnight: the last minute of D0 (its bursts of equal times at 23:59:59.999999) and the first of D land in
    # their own days' partitions; open/close follow (trade_time, trade_id), not arrival order.
    btc = minutes[minutes["product_id"] == "BTC-USD"].set_index("window_start")
    last, first = btc.loc[pd.Timestamp(f"{D0} 23:59")], btc.loc[pd.Timestamp(f"{D} 00:00")]
    assert (last["event_date"], first["event_date"]) == (date.fromisoformat(D0), date.fromisoformat(D))
    day_trades = trades[trades["product_id"] == "BTC-USD"].sort_values(["trade_time", "trade_id"])
    at_midnight = day_trades[day_trades["trade_time"].dt.floor("1min") == pd.Timestamp(f"{D0} 23:59")]
    assert last["close"] == at_midnight["price"].iloc[-1] and last["ticker_count"] > 0
    # A product without tickers: its quote columns are null, its trade columns filled.
    eth = minutes[minutes["product_id"] == "ETH-USD"]
    assert eth[["last_best_bid", "last_best_ask", "mean_spread"]].isna().all().all()
    assert (eth["ticker_count"] == 0).all() and eth["open"].notna().all()
    # Minutes without trades are absent: rows only where trades are.
    assert set(minutes["window_start"]) == set(trades["trade_time"].dt.floor("1min"))
    # The 1h sums equal the 1m sums, per day and product.
    for c in ("volume", "trade_count", "notional"):
        by_day = minutes.groupby(["product_id", "event_date"])[c].sum()
        assert np.allclose(hours.groupby(["product_id", "event_date"])[c].sum(), by_day, rtol=REL)


def test_each_commit_names_the_snapshots_it_read(lake_with_candles):
    s = lake_with_candles[0]
    lake = Lake.from_settings(s)
    minute = lake.table(candles_table_def("1m"))
    hour_snap = lake.table(candles_table_def("1h")).current_snapshot()
    recorded = Provenance.of(hour_snap)
    assert (recorded.asset, recorded.partition) == ("gold_candles_1h", f"{D}|ETH-USD") and recorded.run_id
    assert recorded.upstream == {"gold.candles_1m": minute.current_snapshot().snapshot_id}
    assert set(Provenance.of(minute.current_snapshot()).upstream) == {"silver.trades", "silver.ticker"}


def _break(lake: Lake, interval: str, product: str, change) -> int:
    """Replaces the partition (D, product) with its rows changed by `change`; returns the snapshot."""
    t = candles_table_def(interval)
    rows = snapshots.read(lake.table(t), {"product_id": product, "event_date": D}).to_pandas()
    change(rows)
    table = pa.Table.from_pandas(rows, schema=t.schema, preserve_index=False)
    return snapshots.replace(lake.catalog_config, t, table, {"product_id": product, "event_date": D},
                             Provenance(asset="test-break", run_id="test"))


def _checks_failing(lake: Lake, interval: str, change):
    """(checks failing, stats) on the partition (D, BTC-USD) freshly built, then broken by `change`; the checks
    pass on the freshly built one."""
    day = date.fromisoformat(D)
    for i in ("1m", "1h")[: ("1m", "1h").index(interval) + 1]:  # 1h: from freshly built 1m candles
        s = build_candles(lake, i, day, ["BTC-USD"], run_id="real", full=True)["BTC-USD"]
        assert s.rows > 0 and all(c.passed for c in candles_report(s)[1]), i
    s.snapshot_id = _break(lake, interval, "BTC-USD", change)
    measure(lake, day, s)
    return {c.name for c in candles_report(s)[1] if not c.passed}, s


def test_checks_fail_on_broken_tables_and_pass_on_the_real_ones(lake_with_candles):
    lake = Lake.from_settings(lake_with_candles[0])

    def close_above_high(rows):
        rows.loc[3, "close"] = rows.loc[3, "high"] + 1.0

    failed, s = _checks_failing(lake, "1m", close_above_high)
    assert failed == {"ohlc_consistent"}
    assert s.ohlc_violations == 1 and s.ohlc_examples[0]["close"] == s.ohlc_examples[0]["high"] + 1.0

    def lose_a_minute(rows):
        rows.drop(index=5, inplace=True)

    failed, s = _checks_failing(lake, "1m", lose_a_minute)
    assert failed == {"matches_silver"} and set(s.sums_mismatched) >= {"volume", "trade_count"}

    def twice_the_same_minute(rows):
        rows.loc[7, "window_start"] = rows.loc[6, "window_start"]

    assert _checks_failing(lake, "1m", twice_the_same_minute)[0] == {"one_row_per_window"}

    def more_volume(rows):
        rows.loc[0, "volume"] += 0.5

    failed, s = _checks_failing(lake, "1h", more_volume)
    assert failed == {"matches_1m"} and set(s.sums_mismatched) == {"volume"} and s.rows == 3

    def low_above_open(rows):
        rows.loc[1, "low"] = rows.loc[1, "open"] + 1.0

    assert _checks_failing(lake, "1h", low_above_open)[0] == {"ohlc_consistent"}


def test_a_day_without_silver_trades_has_no_candles(lake_with_candles):
    s = lake_with_candles[0]
    lake = Lake.from_settings(s)
    stats = build_candles(lake, "1m", date(2024, 3, 12), ["BTC-USD"])["BTC-USD"]
    assert stats.rows == 0 and "Silver trades BTC-USD 2024-03-12 is missing or empty" in stats.empty_reason
    assert all(c.passed for c in candles_report(stats)[1])
    hour = build_candles(lake, "1h", date(2024, 3, 12), ["BTC-USD"])["BTC-USD"]
    assert hour.rows == 0 and "1m candles BTC-USD 2024-03-12 are missing or empty" in hour.empty_reason


def test_candles_report_the_same_on_both_engines():
    """What the local asset returns and what the Glue job sends through Pipes decode to the same metadata (a float,
    63-bit snapshot ids as text, examples as JSON) and check results."""
    from crypto_assets_tests.contracts.test_reports import _same_on_both_engines

    sums = {"volume": 1.5, "notional": 150.0, "trade_count": 3, "buy_volume": 1.0, "sell_volume": 0.5}
    s = CandleStats("1m", "BTC-USD", D, "gold.candles_1m", snapshot_id=4_611_686_018_427_387_905,
                    upstream_snapshot_ids={"silver.trades": 9_007_199_254_740_993}, input_rows=3, input_sums=sums,
                    rows=2, sums={**sums, "volume": 1.25}, ohlc_violations=1,
                    ohlc_examples=[{"window_start": f"{D}T00:00:00+00:00", "open": 1.0, "high": 1.0, "low": 1.0,
                                    "close": 2.0, "trade_count": 1, "last_best_bid": None}])
    metadata, checks = candles_report(s)
    assert metadata["snapshot_id"] == ("text", "4611686018427387905") and metadata["volume"] == ("float", 1.25)
    severities = _same_on_both_engines("gold_candles_1m", metadata, checks)
    assert severities == dict.fromkeys(["schema_matches_catalog", "one_row_per_window", "ohlc_consistent",
                                        "matches_silver"], "ERROR")
    assert {c.name for c in checks if not c.passed} == {"ohlc_consistent", "matches_silver"}


@pytest.mark.parametrize("k", [1, 4])
def test_candles_built_in_increments_equal_the_full_build_and_nothing_new_commits_nothing(tmp_path, k):
    """The same Silver rows arriving in k increments (one row in 20 late) give the candles a full build gives,
    row for row; a run with nothing new commits nothing."""
    from crypto_assets_tests.gold.datasets import increments, three_days
    from crypto_assets_tests.gold.silver_writer import append_silver

    days = [date(2024, 3, 10), date(2024, 3, 11), date(2024, 3, 12)]

    trades, tickers = three_days()

    def table(lake: Lake, interval: str) -> pd.DataFrame:
        rows = snapshots.read(lake.table(candles_table_def(interval))).to_pandas()
        return rows.sort_values(["product_id", "event_date", "window_start"]).reset_index(drop=True)

    def build_all(lake: Lake, **kwargs) -> list:
        out = []
        for day in days:
            for interval in ("1m", "1h"):
                s = build_candles(lake, interval, day, ["BTC-USD"], **kwargs)["BTC-USD"]
                assert all(c.passed for c in candles_report(s)[1]), (day, interval, s.mode)
                out.append(s)
        return out

    full_root = str(tmp_path / "full")
    append_silver(full_root, trades, tickers)
    full = Lake(full_root)
    build_all(full, full=True)
    root = str(tmp_path / "inc")
    lake = Lake(root)
    modes = []
    for t, q in zip(increments(trades, "trade_time", k, seed=k), increments(tickers, "event_time", k, seed=k + 9)):
        append_silver(root, t, q)
        modes += [s.mode for s in build_all(lake)]
    for interval in ("1m", "1h"):
        pd.testing.assert_frame_equal(table(lake, interval), table(full, interval))
    assert k == 1 or "incremental" in modes
    before = lake.table(candles_table_def("1m")).metadata_location
    again = build_all(lake)
    assert {s.mode for s in again} == {"unchanged"}
    assert lake.table(candles_table_def("1m")).metadata_location == before
