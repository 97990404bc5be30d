"""The README's example queries, declared once: `crypto-pipeline aws deploy` saves them as Athena named queries,
the README shows them, and a test runs each, unchanged, through `crypto-pipeline sql` on the demo's lake.

Each runs unchanged on DuckDB (`crypto-pipeline sql`, `lake.sql.LakeSql`) and on Athena (Trino), with the
Glue database as the query's database. They keep to the SQL both accept. Avoided: DuckDB's own
(`GROUP BY ALL`, `::` casts, `count_if`, `strftime`, `epoch_ms`, a SELECT alias used in GROUP BY, which Trino
refuses), Trino's own (`approx_percentile`, `to_unixtime`, `from_iso8601_timestamp`, `format_datetime`), a
database prefix in the text (the named query carries its database) and timestamps without a zone. Times
are compared with `TIMESTAMP '... UTC'` literals: Trino types them WITH TIME ZONE, DuckDB converts them to
UTC; both then compare them with the tables' UTC timestamps as long as DuckDB's session zone is UTC
(`date_trunc` too cuts hours in the session's zone; Athena's is UTC). The days are the demo's
(`make demo`: 2026-11-24 23:50 UTC + 20 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExampleQuery:
    name: str  # short, kebab-case: the Athena named query is `<glue_job_prefix>-<name>`
    description: str
    sql: str
    tables: tuple[str, ...]  # the lake tables it reads (as SQL names them)


EXAMPLE_QUERIES: tuple[ExampleQuery, ...] = (
    ExampleQuery(
        "btc-around-midnight",
        "BTC-USD one-minute candles from 23:55 to 00:05 UTC across the demo's midnight",
        """\
SELECT window_start, open, high, low, close, volume, trade_count, vwap, mean_spread
FROM gold_candles_1m
WHERE product_id = 'BTC-USD'
  AND event_date IN (DATE '2026-11-24', DATE '2026-11-25')
  AND window_start >= TIMESTAMP '2026-11-24 23:55:00 UTC'
  AND window_start < TIMESTAMP '2026-11-25 00:05:00 UTC'
ORDER BY window_start""",
        ("gold_candles_1m",),
    ),
    ExampleQuery(
        "spread-per-product-hour",
        "Bid-ask spread per product and hour (absolute and in basis points of the mid) from the Silver ticker",
        """\
SELECT product_id,
       date_trunc('hour', event_time) AS hour_start,
       count(*) AS tickers,
       avg(best_ask - best_bid) AS mean_spread,
       avg((best_ask - best_bid) / ((best_ask + best_bid) / 2) * 10000) AS mean_spread_bps,
       max(best_ask - best_bid) AS max_spread
FROM silver_ticker
WHERE best_bid > 0 AND best_ask >= best_bid
GROUP BY product_id, date_trunc('hour', event_time)
ORDER BY product_id, hour_start""",
        ("silver_ticker",),
    ),
    ExampleQuery(
        "quarantine-by-reason",
        "Items Silver quarantined, per kind and reason",
        """\
SELECT 'trades' AS kind, reason, count(*) AS items, min(event_date) AS first_day, max(event_date) AS last_day
FROM quarantine_trades
GROUP BY reason
UNION ALL
SELECT 'ticker' AS kind, reason, count(*) AS items, min(event_date) AS first_day, max(event_date) AS last_day
FROM quarantine_ticker
GROUP BY reason
ORDER BY items DESC, kind, reason""",
        ("quarantine_trades", "quarantine_ticker"),
    ),
    ExampleQuery(
        "trade-id-gaps",
        "Trades per product and day, and how many trade ids between the first and the last are missing",
        """\
SELECT product_id, event_date, count(*) AS trades,
       min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id,
       max(trade_id) - min(trade_id) + 1 - count(DISTINCT trade_id) AS missing_trade_ids
FROM silver_trades
GROUP BY product_id, event_date
ORDER BY product_id, event_date""",
        ("silver_trades",),
    ),
    ExampleQuery(
        "gold-features-sample",
        "The first 100 Gold rows of BTC-USD on the demo's first day: a few of the 120 features and a target",
        """\
SELECT product_id, trade_time, trade_id, price, ma_10_trades, rsi_14, vwap_50, spread_bps, target_return_10
FROM gold_features
WHERE event_date = DATE '2026-11-24' AND product_id = 'BTC-USD'
ORDER BY trade_time, trade_id
LIMIT 100""",
        ("gold_features",),
    ),
    ExampleQuery(
        "hourly-candles",
        "Hourly candles of every product: open, high, low, close, volume and VWAP",
        """\
SELECT product_id, window_start, open, high, low, close, volume, vwap, trade_count
FROM gold_candles_1h
ORDER BY product_id, window_start""",
        ("gold_candles_1h",),
    ),
)


def example(name: str) -> ExampleQuery:
    return next(q for q in EXAMPLE_QUERIES if q.name == name)


def readme_markdown() -> str:
    """The examples as the README shows them: each once, with what it answers."""
    parts = []
    for q in EXAMPLE_QUERIES:
        parts.append(f"{q.description} (`{q.name}`):\n\n```sql\n{q.sql};\n```")
    return "\n\n".join(parts)
