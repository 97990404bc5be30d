"""Gold through Dagster and `build_gold`: cross-midnight lookback and targets, checks, leakage, bad input,
the written table against the feature rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from dagster import DagsterInstance, MultiPartitionKey, materialize

from crypto_assets.contracts.gold_features import FEATURE_NAMES
from crypto_assets.contracts.tables import gold_table_def
from crypto_assets.gold.build import build_gold
from crypto_assets.gold.table import gold_arrow_schema
from crypto_assets.gold.transforms import compute_features
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.gold import build_gold_asset
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets_tests.gold.datasets import cross_midnight, two_products_with_tickers
from crypto_assets_tests.gold.oracle import oracle_features
from crypto_assets_tests.gold.silver_writer import write_silver
from crypto_assets_tests.gold.test_gold_vs_oracle import ABS, REL

D = "2024-03-11"


def _gold(settings, instance, day=D, product="BTC-USD", tags=None):
    instance.add_dynamic_partitions("product_id", [product])
    result = materialize(
        [build_gold_asset(settings)], partition_key=MultiPartitionKey({"event_date": day, "product_id": product}),
        resources=build_resources(settings), instance=instance, tags=tags,
    )
    md = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    return md, checks


def _read_gold(spark, settings, product="BTC-USD", day=D, snapshot=None) -> pd.DataFrame:
    table = LakeResource.from_settings(settings).table(gold_table_def())
    rows = snapshots.read(table, {"product_id": product, "event_date": day}, snapshot=snapshot).to_pandas()
    rows["trade_time"] = rows["trade_time"].dt.tz_convert(None)
    return rows.sort_values(["trade_time", "trade_id"]).reset_index(drop=True)


def test_cross_midnight_lookback_then_targets_after_next_day_arrives(spark, base_settings, tmp_path):

    s = base_settings.replace(lake_root=str(tmp_path / "lake"))
    trades, tickers = cross_midnight()
    next_day = trades["trade_time"] >= pd.Timestamp("2024-03-12")
    write_silver(spark, s.lake_root, trades[~next_day], tickers)
    instance = DagsterInstance.ephemeral()

    md, checks = _gold(s, instance)
    assert all(checks.values()), checks
    gold = _read_gold(spark, s)
    day_trades = trades[(trades["trade_time"] >= pd.Timestamp(D)) & ~next_day].sort_values(["trade_time", "trade_id"])
    # The lookback crosses midnight: the day's very first trade already has a full window from D-1.
    assert gold["trade_id"].iloc[0] == day_trades["trade_id"].iloc[0]
    assert len(gold) == len(day_trades) and md["excluded_for_lookback"] == 0
    # Without D+1 the last 50 trades cannot know future_price_50: written, but not training-ready.
    assert not gold["is_training_ready"].iloc[-50:].any() and gold["is_training_ready"].iloc[:-50].all()
    assert gold["future_price_10"].iloc[-10:].isna().all() and pd.isna(gold["target_direction_50"].iloc[-1])

    first = int(md["snapshot_id"])

    write_silver(spark, s.lake_root, trades, tickers)  # D+1 arrives
    md, checks = _gold(s, instance)
    assert all(checks.values()), checks
    gold = _read_gold(spark, s)
    assert gold["is_training_ready"].all() and md["training_ready_rows"] == len(gold)
    # Time travel: the first snapshot still holds the rows written before D+1 arrived.
    assert not _read_gold(spark, s, snapshot=first)["is_training_ready"].iloc[-50:].any()
    # The commit names what produced it and the Silver snapshots it read.
    recorded = Provenance.of(LakeResource.from_settings(s).table(gold_table_def()).snapshot_by_id(int(md["snapshot_id"])))
    assert (recorded.asset, recorded.partition) == ("gold_features", f"{D}|BTC-USD") and recorded.run_id
    assert recorded.upstream == {t: int(i) for t, i in md["silver_snapshot_ids"].items()}
    assert set(recorded.upstream) == {"silver.trades", "silver.ticker"}

    # Every written value agrees with the oracle computed on the full input.
    ref = oracle_features(trades, tickers).set_index("trade_id").loc[gold["trade_id"]]
    for name in FEATURE_NAMES:
        a = gold[name].to_numpy(dtype=float, na_value=np.nan)
        b = ref[name].to_numpy(dtype=float)
        ok = (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= np.maximum(ABS, REL * np.maximum(np.abs(a), np.abs(b))))
        assert ok.all(), name


def test_leakage_check_fails_on_a_leaky_minute_bucket_join(spark, base_settings, tmp_path):

    s = base_settings.replace(lake_root=str(tmp_path / "lake"))
    trades, tickers = two_products_with_tickers()
    write_silver(spark, s.lake_root, trades, tickers)
    day = trades["trade_time"].dt.date.iloc[0]
    lake = LakeResource.from_settings(s)
    honest = build_gold(lake, day, ["BTC-USD"])["BTC-USD"]
    assert honest.rows > 0 and honest.leakage.passed, honest.leakage
    leaky = build_gold(lake, day, ["BTC-USD"], quote_join="minute_bucket")["BTC-USD"]
    assert not leaky.leakage.passed
    assert set(leaky.leakage.mismatched_features) & {"best_bid", "best_ask", "mid_price", "ticker_age_ms"}


def test_missing_silver_gives_empty_gold_with_reason(base_settings, tmp_path):

    s = base_settings.replace(lake_root=str(tmp_path / "lake"))
    md, checks = _gold(s, DagsterInstance.ephemeral(), day="2024-01-05")
    assert md["rows"] == 0 and "missing or empty" in md["notes"]
    assert all(checks.values())


def test_absent_tickers_leave_quotes_null_and_say_so(spark, base_settings, tmp_path):

    s = base_settings.replace(lake_root=str(tmp_path / "lake"))
    trades, _ = cross_midnight()
    write_silver(spark, s.lake_root, trades, None)
    md, checks = _gold(s, DagsterInstance.ephemeral())
    assert all(checks.values()), checks
    gold = _read_gold(spark, s)
    assert md["rows"] > 0 and md["rows_without_quote"] == md["rows"] and "quote features are null" in md["notes"]
    assert gold["best_bid"].isna().all() and gold["ma_500_trades"].notna().all()


def test_products_built_together_write_exactly_the_feature_rows(spark, base_settings, tmp_path):
    """Several products in one build (the benchmark's shape: parallel threads). The written table is built
    column by column from the feature arrays; it must hold exactly `compute_features`' rows of the day
    (what the leakage check recomputes), in the catalog's columns and types, with nulls as nulls."""
    trades, tickers = two_products_with_tickers()
    tickers = tickers[tickers["product_id"] == "BTC-USD"]  # ETH without tickers: its quote features are null
    day = trades["trade_time"].min().date()
    start = pd.Timestamp(day)
    s = base_settings.replace(lake_root=str(tmp_path / "lake"))
    write_silver(spark, s.lake_root, trades, tickers)
    stats = build_gold(LakeResource.from_settings(s), day, ["BTC-USD", "ETH-USD"])
    schema = gold_arrow_schema(with_partition_columns=True)
    gold = LakeResource.from_settings(s).table(gold_table_def())
    assert len({st.snapshot_id for st in stats.values()}) == 1  # one commit for both products
    for p, st in stats.items():
        assert st.rows > 0 and st.reconciles and not st.schema_problems and st.leakage.passed, p
        written = snapshots.read(gold, {"product_id": p, "event_date": day}, snapshot=st.snapshot_id)
        assert [(f.name, f.type) for f in written.schema] == [(f.name, f.type) for f in schema]
        assert (written.column("best_bid").null_count == written.num_rows) == (p == "ETH-USD")

        read = trades[(trades["product_id"] == p) & (trades["trade_time"] >= start - pd.Timedelta(days=1))
                      & (trades["trade_time"] < start + pd.Timedelta(days=2))]  # Silver D-1..D+1, as Gold reads
        rows = compute_features(read, tickers[tickers["product_id"] == p])
        in_day = (rows["trade_time"] >= start) & (rows["trade_time"] < start + pd.Timedelta(days=1))
        expected = rows[in_day & rows["lookback_ok"]].reset_index(drop=True)
        got = written.to_pandas().sort_values(["trade_time", "trade_id"], kind="mergesort").reset_index(drop=True)
        assert len(got) == len(expected) == st.rows
        assert (got["trade_time"].dt.tz_convert(None) == expected["trade_time"]).all()
        for name in schema.names:
            if name in ("trade_time", "product_id", "event_date"):
                continue
            if got[name].dtype == object or got[name].dtype == bool:
                assert got[name].tolist() == expected[name].tolist(), name
            else:
                np.testing.assert_array_equal(got[name].to_numpy(dtype=float, na_value=np.nan),
                                              expected[name].to_numpy(dtype=float), err_msg=name)


def test_the_asset_goes_on_from_its_state_and_the_run_tag_rebuilds_it(spark, base_settings, tmp_path):
    """Through Dagster: the first run builds the partition whole, a run with nothing new commits nothing and
    says so, and the run tag crypto/full-rebuild=true rebuilds it whole with the same rows."""
    from crypto_assets.orchestration.keys import FULL_REBUILD_TAG

    s = base_settings.replace(lake_root=str(tmp_path / "lake"))
    trades, tickers = cross_midnight()
    write_silver(spark, s.lake_root, trades, tickers)
    instance = DagsterInstance.ephemeral()
    first, checks = _gold(s, instance)
    assert (first["mode"], first["full_rebuild_reason"]) == ("full", "no state recorded for the partition")
    assert all(checks.values()) and first["rows_written"] == first["rows"] > 0
    again, checks = _gold(s, instance)
    assert again["mode"] == "unchanged" and again["snapshot_id"] == first["snapshot_id"] and all(checks.values())
    assert again["progress"].startswith("incremental: nothing new in Silver")
    rebuilt, checks = _gold(s, instance, tags={FULL_REBUILD_TAG: "true"})
    assert (rebuilt["mode"], rebuilt["full_rebuild_reason"]) == ("full", "a full rebuild was asked for")
    assert rebuilt["snapshot_id"] != first["snapshot_id"] and rebuilt["rows_replaced"] == rebuilt["rows"] == first["rows"]
    assert all(checks.values())
