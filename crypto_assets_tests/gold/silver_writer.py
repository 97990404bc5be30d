"""Writes hand-made trades and tickers into the Silver tables, in Silver's schema, one commit per table (for
Gold tests): as their whole content (`write_silver`), or appended as an incremental Silver run does
(`append_silver`)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from crypto_assets.contracts.tables import silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import Lake


def write_silver(spark, lake_root: str, trades: pd.DataFrame, tickers: pd.DataFrame | None = None) -> None:
    """`spark` is unused (kept for the callers); the rows replace everything Silver held."""
    _write(Lake(lake_root), trades, tickers, _replace)


def append_silver(lake_root: str, trades: pd.DataFrame, tickers: pd.DataFrame | None = None) -> None:
    """The rows added to Silver in new data files (tickers keep the order their `ticker_seq` gives)."""
    _write(Lake(lake_root), trades, tickers, _append)


def _write(lake: Lake, trades: pd.DataFrame, tickers: pd.DataFrame | None, write) -> None:
    t = trades.copy()
    t["notional"] = t["price"] * t["size"]
    _lineage(t, "trade_time")
    t["event_date"] = pd.to_datetime(t["trade_time"]).dt.date
    if len(t) or write is _replace:
        write(lake, "trades", t)
    if tickers is not None and len(tickers):
        k = tickers.copy()
        for c in ("price", "low_24_h", "high_24_h", "low_52_w", "high_52_w", "price_percent_chg_24_h", "volume_24_h"):
            if c not in k:
                k[c] = 1.0
        k["content_hash"] = [f"h{i}" for i in range(len(k))]
        _lineage(k, "event_time", order=k["ticker_seq"].to_numpy() if "ticker_seq" in k else None)
        k["event_date"] = pd.to_datetime(k["event_time"]).dt.date
        write(lake, "ticker", k.drop(columns=[c for c in ("ticker_seq",) if c in k]))


def _replace(lake: Lake, kind: str, df: pd.DataFrame) -> None:
    t = silver_table_def(kind)
    snapshots.replace(lake.catalog_config, t, _arrow(t, df), {}, Provenance(asset=f"silver_{kind}", run_id="test"))


def _append(lake: Lake, kind: str, df: pd.DataFrame) -> None:
    t = silver_table_def(kind)
    snapshots.append(lake.catalog_config, t, _arrow(t, df), Provenance(asset=f"silver_{kind}", run_id="test"))


def _arrow(t, df: pd.DataFrame) -> pa.Table:
    columns = []
    for f in t.schema:
        values = df[f.name]
        if pa.types.is_timestamp(f.type):
            times = pd.to_datetime(values)
            values = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
        columns.append(pa.array(values, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(columns, schema=t.schema)


def _lineage(df: pd.DataFrame, time_col: str, order=None) -> None:
    n = len(df)
    df["kafka_topic"] = "t"
    df["kafka_partition"] = 0
    # Ingestion order = the given tie-break order (ticker_seq) or the row order.
    df["kafka_offset"] = order if order is not None else range(n)
    df["item_index"] = 0
    df["ingest_time"] = df[time_col]
    df["ingest_date"] = pd.to_datetime(df[time_col]).dt.date
    df["source"] = "test"
    df["connection_id"] = "c"
    df["sequence_num"] = range(n)
    df["event_type"] = "update"
    df["is_snapshot"] = False
