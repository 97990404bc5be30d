"""Names every layer shares, declared once: the two kinds of market data, their Kafka channels,
the lake's tables, the Dagster asset names, and what a well-formed product id looks like."""

from __future__ import annotations

TRADES = "trades"
TICKER = "ticker"
KINDS = (TRADES, TICKER)

# The Coinbase channel of each kind, and the key of its items inside a message's events.
EXPECTED_CHANNEL = {TRADES: "market_trades", TICKER: "ticker"}
ITEMS = {TRADES: "trades", TICKER: "tickers"}

# Tables: bronze/<BRONZE_TABLE>, silver/<SILVER_TABLE>, quarantine/<SILVER_TABLE>, gold/features.
BRONZE_TABLE = {TRADES: "kafka_trades", TICKER: "kafka_ticker"}
SILVER_TABLE = {TRADES: "trades", TICKER: "ticker"}
GOLD_TABLE = "features"

# Dagster asset names (the Glue jobs report under the same names).
GOLD_ASSET = "gold_features"
BASELINE_ASSET = "gold_baseline_model"
# Files beside the tables: trained models with their manifests, <lake root>/_models/<asset>/...
MODELS_FOLDER = "_models"

# OHLCV candles per product and UTC window: gold/candles_<interval>, asset gold_candles_<interval>.
CANDLE_INTERVALS = ("1m", "1h")


def candles_table(interval: str) -> str:
    return f"candles_{interval}"


def candles_asset(interval: str) -> str:
    return f"gold_{candles_table(interval)}"


def bronze_asset(kind: str) -> str:
    return f"bronze_{kind}"


def silver_asset(kind: str) -> str:
    return f"silver_{kind}"


# Coinbase product ids (BTC-USD, BTC-PERP-INTX). `\z`, not `$`: Java's regex (Spark) and RE2 (Arrow)
# agree on it, and `$` would accept a trailing newline.
PRODUCT_ID_PATTERN = r"^[A-Z0-9]{1,15}(-[A-Z0-9]{1,15}){1,3}\z"
# The product partition of a row whose product cannot be known (garbage is quarantined there).
UNKNOWN_PRODUCT = "UNKNOWN"
