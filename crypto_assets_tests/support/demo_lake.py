"""A lake like the demo's, written without Kafka or Dagster, for the dashboard and example-query tests and the
dashboard benchmark.

The demo's session (2026-11-24 23:50 UTC + 20 minutes, BTC-USD and ETH-USD, crossing midnight) is generated
with the Gold tests' seeded market (`gold/datasets.py`): Silver trades and tickers (ETH-USD without tickers in
its first minutes), written with the Gold tests' Silver writer; a few quarantined items and Bronze rows per
ingest day; then the real Gold and candle builds (`gold.build.build_gold`, `gold.candles_build.build_candles`)
compute Gold and the 1m and 1h candles from that Silver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from crypto_assets.contracts.names import CANDLE_INTERVALS, TICKER, TRADES
from crypto_assets.contracts.tables import bronze_table, quarantine_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import Lake
from crypto_assets_tests.gold import datasets as ds
from crypto_assets_tests.gold.silver_writer import write_silver

DEMO_START = datetime(2026, 11, 24, 23, 50, tzinfo=timezone.utc)  # as tools.demo
DEMO_DAYS = [date(2026, 11, 24), date(2026, 11, 25)]
PRODUCTS = ["BTC-USD", "ETH-USD"]
QUARANTINED = {TRADES: ["non_positive_price", "bad_size", "non_positive_price"], TICKER: ["bad_quote"]}


@dataclass(frozen=True)
class DemoLake:
    root: str
    products: list[str]
    days: list[date]
    trades: int


def _session(trades_per_product: int, seconds: float, seed: int):
    """Trades (and tickers) of the two products over `seconds` from DEMO_START, as the Gold tests' market."""
    rng = np.random.default_rng(seed)
    start = int(DEMO_START.timestamp() * ds.US_PER_SECOND)
    gap = seconds / trades_per_product
    btc = ds._simple_product(rng, "BTC-USD", ds._poisson_times(rng, start, trades_per_product, gap),
                             8_000_000, 95_000.0, 3e-5)
    eth = ds._simple_product(rng, "ETH-USD", ds._burst_times(rng, start + 777, trades_per_product, gap, 2, 4,
                                                             burst_share=0.3), 600_000, 3_600.0, 8e-5)
    tickers = []
    for i, tr in enumerate((btc, eth)):
        first, last = ds._span_us(tr)
        tickers.append(ds._tickers_for(rng, tr, first + i * 180 * ds.US_PER_SECOND, last, 2.0))
    return ds._finish(rng, [btc, eth], tickers)


def _partition_rows(t, n: int, values: dict) -> pa.Table:
    """`n` rows of one partition of table `t`: the given columns set, the others null."""
    cols = {f.name: pa.nulls(n, f.type) for f in t.schema}
    for name, v in values.items():
        cols[name] = pa.array(v if isinstance(v, list) else [v] * n, t.schema.field(name).type)
    return pa.table(cols, schema=t.schema)


def _bronze_and_quarantine(lake: Lake, trades: pd.DataFrame) -> None:
    """A few Bronze records per ingest day and a few quarantined items (with reasons), as Silver rejects them."""
    config = lake.catalog_config
    for kind in (TRADES, TICKER):
        for i, day in enumerate(DEMO_DAYS):
            when = datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(minutes=5 if i else 23 * 60 + 55)
            snapshots.append(config, bronze_table(kind), _partition_rows(bronze_table(kind), 5 + i, {
                "topic": f"crypto.{kind}.raw", "partition": 0, "offset": list(range(i * 100, i * 100 + 5 + i)),
                "kafka_timestamp": when, "product_id": PRODUCTS[i % 2], "ingest_date": day}),
                Provenance(asset=f"bronze_{kind}", run_id="demo-like"))
        reasons = QUARANTINED[kind]
        t = quarantine_table_def(kind)
        when = pd.Timestamp(trades["trade_time"].min()).tz_localize("UTC").to_pydatetime()
        snapshots.append(config, t, _partition_rows(t, len(reasons), {
            "product_id": "BTC-USD", "reason": reasons, "detail": [f"demo-like {r}" for r in reasons],
            "ingest_time": [when + timedelta(minutes=3 * k) for k in range(len(reasons))],
            "ingest_date": DEMO_DAYS[0], "event_date": DEMO_DAYS[0]}), Provenance(asset=f"silver_{kind}"))


def write_demo_lake(root: str, trades_per_product: int = 1500, seconds: float = 1200.0, seed: int = 7) -> DemoLake:
    """Silver, quarantine, Bronze, Gold and candles of a demo-like session in the lake at `root`."""
    from crypto_assets.gold.build import build_gold
    from crypto_assets.gold.candles_build import build_candles

    trades, tickers = _session(trades_per_product, seconds, seed)
    write_silver(None, root, trades, tickers)
    lake = Lake(root)
    _bronze_and_quarantine(lake, trades)
    days = sorted(pd.to_datetime(trades["trade_time"]).dt.date.unique())
    for day in days:
        build_gold(lake, day, PRODUCTS, leakage_samples=0)
        for interval in CANDLE_INTERVALS:
            build_candles(lake, interval, day, PRODUCTS)
    return DemoLake(root, PRODUCTS, days, len(trades))
