"""The Gold table as written: the rows of a day with a full lookback, column by column from the feature
arrays, in the catalog's Arrow types (nulls as nulls)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crypto_assets.contracts.tables import gold_schema
from crypto_assets.gold.transforms import feature_arrays


def _gold_rows_of(trade_time: pd.Series, lookback_ok: np.ndarray, day: date) -> np.ndarray:
    """The rows Gold writes for `day`: trades of that UTC day with a full lookback."""
    times = trade_time.to_numpy(dtype="datetime64[us]")
    start = np.datetime64(day.isoformat(), "us")
    return (times >= start) & (times < start + np.timedelta64(1, "D")) & lookback_ok


def gold_arrow_schema(with_partition_columns: bool = False):
    """The Gold table's schema (`contracts.tables.gold_schema`); without the partition columns by default,
    as `gold_table` builds the rows of one partition."""
    import pyarrow as pa

    schema = gold_schema()
    return schema if with_partition_columns else pa.schema(
        [f for f in schema if f.name not in ("product_id", "event_date")])


def gold_table(trades: pd.DataFrame, tickers: pd.DataFrame | None, day: date, quote_join: str = "asof",
               rows: tuple[int, int] | None = None, suffix: bool = False):
    """The rows Gold writes for `day` (`_gold_rows_of`) among the trades [lo, hi) of `rows` (default all;
    `suffix` as in `feature_arrays`), as an Arrow table in the catalog's types, built column by column from
    the feature arrays: `compute_features`' values, without assembling a 134-column DataFrame."""
    import pyarrow as pa

    t, f = feature_arrays(trades, tickers, quote_join, rows, suffix)
    keep = np.flatnonzero(_gold_rows_of(t["trade_time"], f["lookback_ok"], day))
    columns = {
        "trade_id": t["trade_id"].to_numpy(dtype=np.int64)[keep],
        "trade_time": t["trade_time"].to_numpy(dtype="datetime64[us]")[keep],
        "price": t["price"].to_numpy(dtype=float)[keep],
        "size": t["size"].to_numpy(dtype=float)[keep],
        "side": t["side"].to_numpy(dtype=object)[keep],
        "is_training_ready": f["is_training_ready"][keep],
    }
    arrays = []
    schema = gold_arrow_schema()
    for field in schema:
        if field.name in columns:
            values = columns[field.name]
            arrays.append(pa.array(values, type=pa.timestamp("us")).cast(field.type) if field.name == "trade_time"
                          else pa.array(values, type=field.type))
            continue
        values = f[field.name][keep]
        missing = np.isnan(values)
        if pa.types.is_integer(field.type):
            values = np.where(missing, 0, values).astype(np.int32)
        arrays.append(pa.array(values, mask=missing if missing.any() else None, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
