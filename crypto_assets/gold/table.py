"""The Gold table as written: the rows of a day with a full lookback, column by column from the feature
arrays, in the catalog's Arrow types (nulls as nulls)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crypto_assets.contracts.gold_features import gold_columns
from crypto_assets.gold.transforms import feature_arrays


def _gold_rows_of(trade_time: pd.Series, lookback_ok: np.ndarray, day: date) -> np.ndarray:
    """The rows Gold writes for `day`: trades of that UTC day with a full lookback."""
    times = trade_time.to_numpy(dtype="datetime64[us]")
    start = np.datetime64(day.isoformat(), "us")
    return (times >= start) & (times < start + np.timedelta64(1, "D")) & lookback_ok


def gold_arrow_schema():
    """The Gold file schema: the catalog's columns and types in Arrow (partition columns stay in the path)."""
    import pyarrow as pa

    types = {"double": pa.float64(), "int": pa.int32(), "bigint": pa.int64(), "string": pa.string(),
             "boolean": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema(
        [pa.field(name, types[typ]) for name, typ in gold_columns() if name not in ("product_id", "event_date")]
    )


def gold_table(trades: pd.DataFrame, tickers: pd.DataFrame | None, day: date, quote_join: str = "asof"):
    """The rows Gold writes for `day` (`_gold_rows_of`) as an Arrow table in the catalog's types, built
    column by column from the feature arrays: `compute_features`' values, without assembling a
    134-column DataFrame."""
    import pyarrow as pa

    t, f = feature_arrays(trades, tickers, quote_join)
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
