"""What the dashboard shows, as queries on the lake: every table read through `lake.sql.LakeSql` (one snapshot
per table per refresh), and Gold's commit history read from its Iceberg metadata.

Each function takes a `LakeView` and returns a pandas frame small enough for a chart: candles as they are
(at most 1,440 a product-day), Gold features averaged per minute and binned for histograms inside DuckDB,
so a 2M-trade day never leaves DuckDB row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from crypto_assets.contracts.names import candles_asset, candles_table
from crypto_assets.contracts.tables import TABLES, gold_table_def
from crypto_assets.lake.catalog import CatalogConfig
from crypto_assets.lake.sql import LakeSql, SqlError, table_names

CANDLES_1M = f"gold_{candles_table('1m')}"
CANDLES_ASSET = candles_asset("1m")
GOLD = gold_table_def().flat_name
TABLE_ORDER = [t.flat_name for t in TABLES.values()]  # Bronze, Silver, quarantine, Gold, as declared
HISTOGRAM_BINS = 40
QUARANTINE_BUCKETS = ("minute", "hour", "day")  # date_trunc units of the quarantine-over-time chart
LAG_COMMITS = 60  # the newest Gold commits whose lag is shown
# Gold columns that are not features: keys, the trade itself, flags and the partition.
NOT_FEATURES = {"product_id", "event_date", "trade_id", "trade_time", "price", "size", "side", "is_training_ready"}


def _text(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _day(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def feature_names() -> list[str]:
    """Gold's numeric feature and target columns, in the table's order."""
    import pyarrow as pa

    return [f.name for f in gold_table_def().schema
            if f.name not in NOT_FEATURES and (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))]


class LakeView:
    """One refresh of the dashboard: a LakeSql connection (each table pinned at its newest snapshot the first
    time a query names it), in UTC like Athena."""

    def __init__(self, config: CatalogConfig):
        self.config = config
        self.sql = LakeSql(config)
        self.sql.con.execute("SET TimeZone = 'UTC'")

    def frame(self, query: str) -> pd.DataFrame:
        return self.sql.arrow(query).to_pandas()

    def has_table(self, name: str) -> bool:
        return name in table_names()

    def snapshot_key(self) -> tuple:
        """The snapshots pinned so far: what a cached result depends on."""
        return tuple(sorted((p.name, p.snapshot_id) for p in self.sql.pinned.values()))


# ---- the lake as a whole ------------------------------------------------------------------------------------

def partition_rows(view: LakeView) -> pd.DataFrame:
    """Rows per table and partition: table, layer, product_id (none for Bronze), day, rows."""
    parts = []
    for t in TABLES.values():
        product = "product_id" if "product_id" in t.partition_by else "CAST(NULL AS VARCHAR)"
        day = "event_date" if "event_date" in t.partition_by else "ingest_date"
        group = ", ".join(c for c in ("product_id", day) if c in t.partition_by)
        parts.append(f"SELECT {_text(t.flat_name)} AS table_name, {_text(t.layer)} AS layer, {product} AS product_id, "
                     f"{day} AS day, count(*) AS rows FROM {t.flat_name} GROUP BY {group}")
    out = view.frame(" UNION ALL ".join(parts) + " ORDER BY layer, table_name, day, product_id")
    return out


def is_empty(rows: pd.DataFrame) -> bool:
    return rows.empty or int(rows["rows"].sum()) == 0


def product_days(rows: pd.DataFrame, table: str) -> pd.DataFrame:
    """(product_id, day) partitions of `table` that hold rows, newest day first."""
    found = rows[(rows["table_name"] == table) & (rows["rows"] > 0)][["product_id", "day"]]
    return found.sort_values(["day", "product_id"], ascending=[False, True]).reset_index(drop=True)


# ---- market ------------------------------------------------------------------------------------------------

def candles(view: LakeView, product: str, day: date) -> pd.DataFrame:
    """The product-day's one-minute candles, oldest first, with the spread (null in minutes without a quote)."""
    return view.frame(
        f"SELECT window_start, open, high, low, close, volume, buy_volume, sell_volume, trade_count, vwap, "
        f"last_best_bid, last_best_ask, mean_spread FROM {CANDLES_1M} "
        f"WHERE product_id = {_text(product)} AND event_date = {_day(day)} ORDER BY window_start")


# ---- features ----------------------------------------------------------------------------------------------

def _feature(name: str) -> str:
    if name not in feature_names():
        raise SqlError(f"{name!r} is not a Gold feature")
    return name


def feature_per_minute(view: LakeView, product: str, day: date, feature: str) -> pd.DataFrame:
    """minute, price (mean trade price), value (mean of the feature), trades: one row per minute with trades."""
    f = _feature(feature)
    return view.frame(
        f"SELECT date_trunc('minute', trade_time) AS minute, avg(price) AS price, "
        f"avg(CASE WHEN isfinite({f}) THEN {f} END) AS value, count(*) AS trades FROM {GOLD} "
        f"WHERE product_id = {_text(product)} AND event_date = {_day(day)} "
        f"GROUP BY date_trunc('minute', trade_time) ORDER BY minute")


def feature_histogram(view: LakeView, product: str, day: date, feature: str,
                      bins: int = HISTOGRAM_BINS) -> pd.DataFrame:
    """The feature's distribution over the product-day's Gold rows: bin_start, bin_end, rows (empty bins absent)."""
    f = _feature(feature)
    return view.frame(f"""
        WITH v AS (SELECT {f} AS x FROM {GOLD}
                   WHERE product_id = {_text(product)} AND event_date = {_day(day)} AND isfinite({f})),
             r AS (SELECT min(x) AS lo, max(x) AS hi FROM v),
             b AS (SELECT CASE WHEN r.hi = r.lo THEN 0
                               ELSE least(CAST(floor((v.x - r.lo) / (r.hi - r.lo) * {bins}) AS INTEGER), {bins - 1})
                          END AS bin, r.lo, r.hi
                   FROM v, r)
        SELECT lo + bin * (hi - lo) / {bins} AS bin_start,
               CASE WHEN hi = lo THEN hi ELSE lo + (bin + 1) * (hi - lo) / {bins} END AS bin_end,
               count(*) AS rows
        FROM b GROUP BY bin, lo, hi ORDER BY bin""")


# ---- pipeline health ---------------------------------------------------------------------------------------

def quarantine_over_time(view: LakeView, bucket: str) -> pd.DataFrame:
    """Quarantined items per time bucket (of their ingest time), kind and reason."""
    if bucket not in QUARANTINE_BUCKETS:
        raise SqlError(f"bucket {bucket!r}: expected one of {', '.join(QUARANTINE_BUCKETS)}")
    parts = [f"SELECT date_trunc('{bucket}', ingest_time) AS time, {_text(kind)} AS kind, reason, count(*) AS items "
             f"FROM quarantine_{kind} GROUP BY date_trunc('{bucket}', ingest_time), reason"
             for kind in ("trades", "ticker")]
    return view.frame(" UNION ALL ".join(parts) + " ORDER BY time, kind, reason")


def trade_id_gaps(view: LakeView) -> pd.DataFrame:
    """Per product and day: Silver trades, first and last trade id, and the ids in between that are missing."""
    return view.frame(
        "SELECT product_id, event_date, count(*) AS trades, min(trade_id) AS first_trade_id, "
        "max(trade_id) AS last_trade_id, max(trade_id) - min(trade_id) + 1 - count(DISTINCT trade_id) AS missing_ids "
        "FROM silver_trades GROUP BY product_id, event_date ORDER BY product_id, event_date")


@dataclass(frozen=True)
class GoldCommit:
    snapshot_id: int
    committed_at: datetime
    newest_trade: dict[str, datetime]  # product -> the newest trade_time Gold holds after this commit


def gold_commit(view: LakeView, snapshot_id: int, committed_at: datetime) -> GoldCommit:
    """The newest trade time per product in one Gold snapshot, from its data files' column bounds (metadata
    only: no data file is opened)."""
    from crypto_assets.lake.catalog import load_table
    from crypto_assets.lake.snapshots import snapshot_files

    _, files = snapshot_files(load_table(view.config, gold_table_def()), {}, snapshot_id, bounds=("trade_time",))
    newest: dict[str, datetime] = {}
    for f in files:
        upper = f.upper.get("trade_time")
        product = f.partition.get("product_id")
        if upper is None or not f.records:
            continue
        when = _as_datetime(upper)
        if product not in newest or when > newest[product]:
            newest[product] = when
    return GoldCommit(snapshot_id, committed_at, newest)


def _as_datetime(value) -> datetime:
    """pyiceberg decodes a timestamptz bound as microseconds since the epoch."""
    from datetime import timezone

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(int(value) / 1e6, timezone.utc)


def gold_data_commits(view: LakeView, limit: int = LAG_COMMITS) -> tuple[list[tuple[int, datetime]], bool]:
    """(snapshot id, commit time) of Gold's newest snapshots that added rows, oldest first, and whether the
    first of them is only there as the baseline of the next (older commits exist beyond `limit`)."""
    from crypto_assets.lake.time_travel import history

    entries = [e for e in history(view.config, gold_table_def().identifier) if e.operation in ("append", "overwrite")]
    return [(e.snapshot_id, e.committed_at) for e in entries[-limit - 1:]], len(entries) > limit


def gold_lag(commits: list[GoldCommit], baseline: bool) -> pd.DataFrame:
    """For every Gold commit that brought newer trades of a product than the commits before it: the age of the
    newest of them when the commit landed (committed_at - trade_time). While `make live` runs, this is the time
    from a trade to its Gold row, for the last trade of each commit; on a replayed or demo session it is the
    age of the session's data instead. With `baseline`, the first commit only sets what is not new."""
    rows, seen = [], {}
    for i, c in enumerate(commits):
        for product, when in sorted(c.newest_trade.items()):
            if not (baseline and i == 0) and (product not in seen or when > seen[product]):
                rows.append({"committed_at": c.committed_at, "product_id": product, "newest_trade": when,
                             "lag_seconds": (c.committed_at - when).total_seconds(), "snapshot_id": c.snapshot_id})
            seen[product] = max(when, seen.get(product, when))
    return pd.DataFrame(rows, columns=["committed_at", "product_id", "newest_trade", "lag_seconds", "snapshot_id"])
