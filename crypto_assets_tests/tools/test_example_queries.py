"""The README's example queries (tools.example_queries, also saved as Athena named queries by `aws deploy`) run
unchanged through `crypto-pipeline sql` on a lake like the demo's and answer what they say, checked against
the tables' own rows; and they keep to SQL that Athena (Trino) accepts too."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from crypto_assets.lake.catalog import CatalogConfig
from crypto_assets.lake.sql import LakeSql
from crypto_assets.tools.cli import main
from crypto_assets.tools.example_queries import EXAMPLE_QUERIES, example, readme_markdown
from crypto_assets_tests.support.demo_lake import QUARANTINED, write_demo_lake

# DuckDB-only (or Trino-only) constructs the examples must not use.
NOT_PORTABLE = [r"GROUP BY ALL", r"ORDER BY ALL", r"::", r"\bcount_if\b", r"\bstrftime\b", r"\bepoch_ms\b",
                r"\bapprox_percentile\b", r"\bto_unixtime\b", r"\bfrom_iso8601", r"\bformat_datetime\b",
                r"\bQUALIFY\b", r"\bEXCLUDE\b", r'"']


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return write_demo_lake(str(tmp_path_factory.mktemp("examples") / "lake"))


@pytest.fixture
def run(lake, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_LAKE_ROOT", lake.root)

    def run(name: str) -> list[dict]:
        assert main(["sql", example(name).sql, "--format", "json"]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        return [json.loads(line) for line in captured.out.splitlines()]

    return run


def _sql(lake):
    return LakeSql(CatalogConfig("sql", f"sqlite:///{lake.root}/catalog.db", lake.root))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def test_btc_around_midnight(run, lake):
    rows = run("btc-around-midnight")
    times = [_time(r["window_start"]) for r in rows]
    expected = [r["window_start"] for r in _sql(lake).arrow(
        "SELECT window_start FROM gold_candles_1m WHERE product_id = 'BTC-USD' ORDER BY window_start").to_pylist()
        if datetime(2026, 11, 24, 23, 55, tzinfo=timezone.utc) <= r["window_start"]
        < datetime(2026, 11, 25, 0, 5, tzinfo=timezone.utc)]
    assert times == expected and len(times) == 10  # every minute of the ten has trades, across midnight
    assert {t.date() for t in times} == {date(2026, 11, 24), date(2026, 11, 25)}
    assert all(r["low"] <= min(r["open"], r["close"]) <= max(r["open"], r["close"]) <= r["high"] for r in rows)
    assert all(r["trade_count"] > 0 and r["volume"] > 0 for r in rows)


def test_spread_per_product_and_hour(run, lake):
    rows = run("spread-per-product-hour")
    assert [(r["product_id"], _time(r["hour_start"]).hour) for r in rows] == [
        ("BTC-USD", 23), ("BTC-USD", 0), ("ETH-USD", 23), ("ETH-USD", 0)]
    tickers = _sql(lake).arrow("SELECT product_id, count(*) AS n FROM silver_ticker WHERE best_bid > 0 AND "
                               "best_ask >= best_bid GROUP BY product_id").to_pylist()
    per_product = Counter()
    for r in rows:
        per_product[r["product_id"]] += r["tickers"]
        assert 0 < r["mean_spread"] <= r["max_spread"] and r["mean_spread_bps"] > 0
    assert per_product == {t["product_id"]: t["n"] for t in tickers}


def test_quarantine_by_reason(run):
    rows = run("quarantine-by-reason")
    assert {(r["kind"], r["reason"]): r["items"] for r in rows} == {
        (kind, reason): n for kind, reasons in QUARANTINED.items() for reason, n in Counter(reasons).items()}
    assert [r["items"] for r in rows] == sorted((r["items"] for r in rows), reverse=True)


def test_trade_id_gaps(run, lake):
    rows = run("trade-id-gaps")
    silver = _sql(lake).arrow("SELECT product_id, event_date, trade_id FROM silver_trades").to_pylist()
    counts = Counter((r["product_id"], r["event_date"].isoformat()) for r in silver)
    assert {(r["product_id"], r["event_date"]): r["trades"] for r in rows} == counts
    assert all(r["missing_trade_ids"] == 0 for r in rows)  # the generated ids are consecutive


def test_gold_features_sample(run):
    rows = run("gold-features-sample")
    assert len(rows) == 100 and {r["product_id"] for r in rows} == {"BTC-USD"}
    assert {_time(r["trade_time"]).date() for r in rows} == {date(2026, 11, 24)}
    keys = [(r["trade_time"], r["trade_id"]) for r in rows]
    assert keys == sorted(keys) and all(0 <= r["rsi_14"] <= 100 for r in rows)


def test_hourly_candles(run, lake):
    rows = run("hourly-candles")
    volume = {r["product_id"]: r["v"] for r in _sql(lake).arrow(
        "SELECT product_id, sum(size) AS v FROM silver_trades GROUP BY product_id").to_pylist()}
    per_product = Counter()
    for r in rows:
        per_product[r["product_id"]] += r["volume"]
    assert per_product.keys() == volume.keys()
    assert all(abs(per_product[p] - volume[p]) <= 1e-9 * volume[p] for p in volume)


def test_every_example_is_tested_portable_and_in_the_readme_once():
    source = Path(__file__).read_text()
    assert [q.name for q in EXAMPLE_QUERIES if f'run("{q.name}")' not in source] == []  # each one checked above
    assert len({q.name for q in EXAMPLE_QUERIES}) == len(EXAMPLE_QUERIES) == 6
    text = readme_markdown()
    for q in EXAMPLE_QUERIES:
        assert text.count(q.sql) == 1, q.name
        for pattern in NOT_PORTABLE:
            assert not re.search(pattern, q.sql, re.IGNORECASE), (q.name, pattern)
        named = {t for t in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", q.sql)}
        assert named == set(q.tables), q.name
