"""The dashboard's queries (tools.dashboard_queries) on a real lake (SQLite catalog, Iceberg tables, DuckDB):
each answer equals the same figure computed with pandas from the tables' rows, and the Gold lag follows the
table's commits."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from crypto_assets.contracts.tables import TABLES, gold_table_def, quarantine_table_def, silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import CatalogConfig, load_table
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.time_travel import history
from crypto_assets.tools import dashboard_queries as q
from crypto_assets_tests.support.demo_lake import _partition_rows

DAY = date(2026, 11, 24)
START = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)


@pytest.fixture
def config(tmp_path):
    root = tmp_path / "lake"
    return CatalogConfig("sql", f"sqlite:///{root}/catalog.db", str(root))


def _gold(config, product: str, n: int, first: datetime, seed: int) -> None:
    """Replaces Gold (product, DAY) with `n` trades a second apart from `first`, with an rsi_14 (a few not finite)."""
    rng = np.random.default_rng(seed)
    rsi = rng.uniform(0, 100, n)
    rsi[:3] = [np.nan, np.inf, -np.inf]
    t = gold_table_def()
    rows = _partition_rows(t, n, {"product_id": product, "event_date": DAY, "trade_id": list(range(n)),
                                  "trade_time": [first + timedelta(seconds=i) for i in range(n)],
                                  "price": list(100 + rng.normal(0, 1, n)), "rsi_14": list(rsi)})
    snapshots.replace(config, t, rows, {"product_id": product, "event_date": DAY}, Provenance(asset="gold_features"))


def _gold_frame(config) -> pd.DataFrame:
    return snapshots.read(load_table(config, gold_table_def())).to_pandas()


def test_feature_per_minute_and_histogram_equal_pandas(config):
    _gold(config, "BTC-USD", 500, START, seed=1)
    view = q.LakeView(config)
    gold = _gold_frame(config)
    got = q.feature_per_minute(view, "BTC-USD", DAY, "rsi_14")
    gold["minute"] = gold["trade_time"].dt.floor("min")
    finite = gold["rsi_14"].where(np.isfinite(gold["rsi_14"]))
    want = gold.assign(value=finite).groupby("minute").agg(price=("price", "mean"), value=("value", "mean"),
                                                           trades=("price", "size")).reset_index()
    assert list(got["minute"]) == list(want["minute"]) and list(got["trades"]) == list(want["trades"])
    assert np.allclose(got["price"], want["price"]) and np.allclose(got["value"], want["value"])

    hist = q.feature_histogram(view, "BTC-USD", DAY, "rsi_14")
    values = gold["rsi_14"][np.isfinite(gold["rsi_14"])].to_numpy()
    counts, edges = np.histogram(values, bins=q.HISTOGRAM_BINS)
    assert int(hist["rows"].sum()) == len(values) == 497
    assert np.isclose(hist["bin_start"].iloc[0], values.min()) and np.isclose(hist["bin_end"].iloc[-1], values.max())
    by_start = dict(zip(np.round(hist["bin_start"], 9), hist["rows"]))
    assert by_start == {round(e, 9): c for e, c in zip(edges[:-1], counts) if c}
    with pytest.raises(q.SqlError):  # only Gold's feature columns are queried
        q.feature_per_minute(view, "BTC-USD", DAY, "price; DROP TABLE x")


def test_partition_rows_gaps_and_quarantine_equal_the_tables(config):
    silver = silver_table_def("trades")
    ids = [1, 2, 3, 7, 8]  # 4, 5 and 6 missing
    snapshots.append(config, silver, _partition_rows(silver, len(ids), {
        "product_id": "ETH-USD", "event_date": DAY, "trade_id": ids}), Provenance(asset="silver_trades"))
    qt = quarantine_table_def("trades")
    snapshots.append(config, qt, _partition_rows(qt, 3, {
        "product_id": "ETH-USD", "event_date": DAY, "reason": ["bad_size", "bad_size", "unknown_side"],
        "ingest_time": [START, START + timedelta(minutes=1), START + timedelta(hours=2)]}), Provenance(asset="q"))
    _gold(config, "BTC-USD", 20, START, seed=2)
    view = q.LakeView(config)

    rows = q.partition_rows(view)
    want = []
    for t in TABLES.values():
        table = snapshots.read(load_table(config, t)).to_pandas()
        day = "event_date" if "event_date" in t.partition_by else "ingest_date"
        for key, n in table.groupby([c for c in ("product_id", day) if c in t.partition_by]).size().items():
            product, d = key if isinstance(key, tuple) else (None, key)
            want.append((t.flat_name, product, d, n))
    assert sorted(want) == sorted(zip(rows["table_name"], rows["product_id"].where(rows["product_id"].notna(), None),
                                      rows["day"], rows["rows"]))
    assert not q.is_empty(rows) and list(q.product_days(rows, "silver_trades").itertuples(index=False)) == [
        ("ETH-USD", DAY)]

    gaps = q.trade_id_gaps(view)
    assert gaps.to_dict("records") == [{"product_id": "ETH-USD", "event_date": DAY, "trades": 5, "first_trade_id": 1,
                                        "last_trade_id": 8, "missing_ids": 3}]
    per_hour = q.quarantine_over_time(view, "hour")
    assert [(r.time.hour, r.kind, r.reason, r.items) for r in per_hour.itertuples()] == [
        (10, "trades", "bad_size", 2), (12, "trades", "unknown_side", 1)]
    assert len(q.quarantine_over_time(view, "minute")) == 3


def test_gold_lag_is_commit_time_minus_the_newest_trade_each_commit_brought(config):
    _gold(config, "BTC-USD", 10, START, seed=3)  # newest BTC trade START + 9 s
    _gold(config, "BTC-USD", 30, START, seed=4)  # newest START + 29 s
    _gold(config, "ETH-USD", 5, START + timedelta(minutes=5), seed=5)  # BTC unchanged: only ETH is new
    _gold(config, "BTC-USD", 30, START, seed=6)  # a rewrite bringing nothing newer: no point
    view = q.LakeView(config)
    ids, baseline = q.gold_data_commits(view)
    assert not baseline and len(ids) == 4
    lag = q.gold_lag([q.gold_commit(view, s, when) for s, when in ids], baseline)
    commits = {e.snapshot_id: e.committed_at for e in history(config, "gold.features")}
    newest = [("BTC-USD", START + timedelta(seconds=9)), ("BTC-USD", START + timedelta(seconds=29)),
              ("ETH-USD", START + timedelta(minutes=5, seconds=4))]
    assert list(zip(lag["product_id"], lag["newest_trade"])) == newest
    assert list(lag["snapshot_id"]) == [s for s, _ in ids[:3]]
    assert [r.lag_seconds for r in lag.itertuples()] == [
        (commits[s] - t).total_seconds() for (s, _), (_, t) in zip(ids[:3], newest)]
    # With older commits beyond the window, the first one kept is only the baseline.
    ids, baseline = q.gold_data_commits(view, limit=2)
    assert baseline and len(ids) == 3
    lag = q.gold_lag([q.gold_commit(view, s, when) for s, when in ids], baseline)
    assert list(zip(lag["product_id"], lag["newest_trade"])) == newest[2:]
