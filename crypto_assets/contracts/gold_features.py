"""The Gold feature catalog in code: one registry that the writer, the checks, the tests and the
generated docs (`docs/feature_catalog.md`) all read. Definitions follow
`specs/gold_features.md` (see the README's link); names are column names.
"""

from __future__ import annotations

from dataclasses import dataclass

DOUBLE, INT = "double", "int"


@dataclass(frozen=True)
class Feature:
    name: str
    group: str  # "A" (original job), "A'" (quote, fixed), "B" (beyond), "target"
    definition: str
    unit: str
    dtype: str = DOUBLE
    # False when the value can still be null on a row with a full lookback (a division that can hit
    # zero, or a quote feature when no ticker has arrived yet).
    never_null_when_full: bool = True
    bounds: tuple[float, float] | None = None


def _f(name, group, definition, unit, dtype=DOUBLE, full=True, bounds=None) -> Feature:
    return Feature(name, group, definition, unit, dtype, full, bounds)


def _group_a() -> list[Feature]:
    out = []
    out += [_f(f"ma_{n}_trades", "A", f"mean of price over the last {n} trades", "quote currency") for n in (10, 50, 100, 500)]
    for n in (10, 50, 100):
        out += [_f(f"min_{n}_trades", "A", f"minimum price over the last {n} trades", "quote currency"),
                _f(f"max_{n}_trades", "A", f"maximum price over the last {n} trades", "quote currency")]
    out += [_f(f"price_range_{n}", "A", f"max_{n}_trades - min_{n}_trades", "quote currency") for n in (10, 50, 100)]
    out += [_f(f"volatility_{n}", "A", f"sample standard deviation of price over the last {n} trades", "quote currency") for n in (10, 50, 100)]
    out += [_f(f"price_change_{n}", "A", f"price - price {n} trades earlier", "quote currency") for n in (1, 5, 10, 50)]
    out += [_f(f"return_{n}", "A", f"(price - price {n} trades earlier) / that price x100", "%") for n in (1, 10, 50, 100)]
    out += [_f(f"price_vs_ma_{n}", "A", f"(price - ma_{n}_trades) / ma_{n}_trades x100", "%") for n in (10, 50, 100)]
    out += [_f(f"volume_{n}", "A", f"sum of size over the last {n} trades", "base currency") for n in (10, 50, 100)]
    out += [_f(f"volume_ma_{n}", "A", f"mean of size over the last {n} trades", "base currency") for n in (10, 50, 100)]
    out += [_f(f"volume_ratio_{n}", "A", f"size / volume_ma_{n}", "ratio") for n in (10, 50)]
    for n in (50, 100):
        out += [_f(f"buy_count_{n}", "A", f"trades with side BUY in the last {n}", "trades", INT),
                _f(f"sell_count_{n}", "A", f"trades with side SELL in the last {n}", "trades", INT)]
    out += [_f(f"buy_sell_ratio_{n}", "A", f"buy_count_{n} / sell_count_{n} (null if no SELL)", "ratio", full=False) for n in (50, 100)]
    for n in (50, 100):
        out += [_f(f"buy_volume_{n}", "A", f"sum of size of BUY trades in the last {n}", "base currency"),
                _f(f"sell_volume_{n}", "A", f"sum of size of SELL trades in the last {n}", "base currency")]
    out += [_f(f"buy_volume_ratio_{n}", "A", f"buy_volume_{n} / volume_{n}", "ratio", bounds=(0, 1)) for n in (50, 100)]
    out += [
        _f("hour_of_day", "A", "hour of trade_time in UTC (0-23)", "hour", INT, bounds=(0, 23)),
        _f("day_of_week", "A", "day of trade_time in UTC, 1 = Sunday ... 7 = Saturday", "day", INT, bounds=(1, 7)),
        _f("is_weekend", "A", "1 if Saturday or Sunday (UTC) else 0", "flag", INT, bounds=(0, 1)),
        _f("is_buy", "A", "1 if side is BUY else 0", "flag", INT, bounds=(0, 1)),
    ]
    return out


def _group_a_quote() -> list[Feature]:
    q = "from the as-of ticker (latest of the product with event time <= trade_time)"
    return [
        _f("best_bid", "A'", f"best bid {q}", "quote currency", full=False),
        _f("best_ask", "A'", f"best ask {q}", "quote currency", full=False),
        _f("bid_ask_spread", "A'", "best_ask - best_bid", "quote currency", full=False),
        _f("spread_pct", "A'", "(best_ask - best_bid) / best_bid x100", "%", full=False),
        _f("price_vs_bid", "A'", "(price - best_bid) / best_bid x100", "%", full=False),
        _f("price_vs_ask", "A'", "(price - best_ask) / best_ask x100", "%", full=False),
    ]


def _group_b() -> list[Feature]:
    out = []
    out += [_f(f"log_return_{n}", "B", f"ln(price / price {n} trades earlier)", "log") for n in (1, 10, 50, 100)]
    out += [_f(f"realized_vol_{n}", "B", f"sqrt of the sum of squared log_return_1 over the last {n} trades", "log") for n in (10, 50, 100)]
    out += [_f(f"zscore_{n}", "B", f"(price - ma_{n}_trades) / volatility_{n} (null if volatility is 0)", "sd", full=False) for n in (50, 100)]
    out += [_f(f"rsi_{n}", "B", f"100 - 100 / (1 + G/L), G and L the mean gain and loss of the last {n} price changes; 100 when L = 0 < G, null when both are 0", "index", full=False, bounds=(0, 100)) for n in (14, 50)]
    out += [
        _f("bollinger_pctb_50", "B", "(price - (ma_50 - 2 sd_50)) / (4 sd_50)", "ratio", full=False),
        _f("bollinger_width_50", "B", "4 sd_50 / ma_50", "ratio"),
    ]
    out += [_f(f"price_position_{n}", "B", f"(price - min_{n}) / (max_{n} - min_{n}) (null if max = min)", "ratio", full=False, bounds=(0, 1)) for n in (100, 500)]
    out += [_f("ma_cross_10_50", "B", "ma_10 / ma_50 - 1", "ratio"), _f("ma_cross_50_500", "B", "ma_50 / ma_500 - 1", "ratio")]
    out += [_f(f"notional_{n}", "B", f"sum of price x size over the last {n} trades", "quote currency") for n in (10, 50, 100)]
    out += [_f(f"vwap_{n}", "B", f"notional_{n} / volume_{n}", "quote currency") for n in (10, 50, 100)]
    out += [_f(f"price_vs_vwap_{n}", "B", f"(price - vwap_{n}) / vwap_{n} x100", "%") for n in (10, 50, 100)]
    out += [_f(f"order_flow_imbalance_{n}", "B", f"(buy volume - sell volume) / volume over the last {n}", "ratio", bounds=(-1, 1)) for n in (10, 50, 100)]
    out += [_f("signed_volume", "B", "size if BUY, -size if SELL", "base currency")]
    out += [_f(f"signed_volume_sum_{n}", "B", f"sum of signed_volume over the last {n}", "base currency") for n in (50, 100)]
    out += [_f("size_zscore_100", "B", "(size - volume_ma_100) / sample sd of size over the last 100 (null if 0)", "sd", full=False)]
    out += [_f("seconds_since_prev_trade", "B", "trade_time - previous trade's time", "s")]
    out += [_f(f"mean_intertrade_seconds_{n}", "B", f"(trade_time - time of the trade {n} earlier) / {n}", "s") for n in (10, 50)]
    out += [_f(f"trade_rate_{n}", "B", f"{n} / seconds spanned by the last {n} trades (null if 0 s)", "trades/s", full=False) for n in (50, 100)]
    for label, secs in (("1m", 60), ("5m", 300)):
        w = f"trades with time in (t - {secs} s, t] up to and including this one"
        out += [
            _f(f"trades_{label}", "B", f"count of {w}", "trades", INT),
            _f(f"volume_{label}", "B", f"sum of size of {w}", "base currency"),
            _f(f"vwap_{label}", "B", f"sum of price x size / sum of size of {w}", "quote currency"),
            _f(f"return_{label}", "B", f"(price - price of the last trade at or before t - {secs} s) / that price x100", "%"),
        ]
    out += [_f("amihud_50", "B", "mean over the last 50 of abs(return_1 / 100) / (price x size)", "1/quote currency")]
    q = "from the as-of ticker"
    out += [
        _f("best_bid_qty", "B", f"best bid quantity {q}", "base currency", full=False),
        _f("best_ask_qty", "B", f"best ask quantity {q}", "base currency", full=False),
        _f("mid_price", "B", "(best_bid + best_ask) / 2", "quote currency", full=False),
        _f("microprice", "B", "(best_bid x best_ask_qty + best_ask x best_bid_qty) / (best_bid_qty + best_ask_qty)", "quote currency", full=False),
        _f("book_imbalance", "B", "(best_bid_qty - best_ask_qty) / (best_bid_qty + best_ask_qty)", "ratio", full=False, bounds=(-1, 1)),
        _f("spread_bps", "B", "(best_ask - best_bid) / mid_price x10,000", "bps", full=False),
        _f("price_vs_mid_bps", "B", "(price - mid_price) / mid_price x10,000", "bps", full=False),
        _f("ticker_age_ms", "B", "trade_time - as-of ticker event time", "ms", full=False),
        _f("volume_24h", "B", f"24 h volume {q}", "base currency", full=False),
        _f("price_change_24h", "B", f"24 h price change percent {q}", "%", full=False),
        _f("range_position_24h", "B", f"(price - low_24h) / (high_24h - low_24h) {q}", "ratio", full=False),
        _f("range_position_52w", "B", f"(price - low_52w) / (high_52w - low_52w) {q}", "ratio", full=False),
        _f("hour_sin", "B", "sin(2 pi h / 24), h = hour + minutes / 60 (UTC)", "1", bounds=(-1, 1)),
        _f("hour_cos", "B", "cos(2 pi h / 24)", "1", bounds=(-1, 1)),
        _f("dow_sin", "B", "sin(2 pi (day_of_week - 1) / 7)", "1", bounds=(-1, 1)),
        _f("dow_cos", "B", "cos(2 pi (day_of_week - 1) / 7)", "1", bounds=(-1, 1)),
    ]
    return out


def _targets() -> list[Feature]:
    out = []
    out += [_f(f"future_price_{n}", "target", f"price of the trade {n} later (null until known)", "quote currency", full=False) for n in (10, 50)]
    out += [_f(f"target_return_{n}", "target", f"(future_price_{n} - price) / price x100", "%", full=False) for n in (10, 50)]
    out += [_f(f"target_direction_{n}", "target", f"1 if target_return_{n} > 0, 0 if < 0, null if equal or unknown", "flag", INT, full=False, bounds=(0, 1)) for n in (10, 50)]
    return out


FEATURES: tuple[Feature, ...] = tuple(_group_a() + _group_a_quote() + _group_b())
TARGETS: tuple[Feature, ...] = tuple(_targets())
FEATURE_NAMES = tuple(f.name for f in FEATURES)
TARGET_NAMES = tuple(f.name for f in TARGETS)
BY_NAME = {f.name: f for f in FEATURES + TARGETS}

# Key columns on every Gold row, in order, with their Spark types.
KEY_COLUMNS = (
    ("product_id", "string"), ("event_date", "date"), ("trade_id", "bigint"), ("trade_time", "timestamp"),
    ("price", "double"), ("size", "double"), ("side", "string"), ("is_training_ready", "boolean"),
)

assert len(FEATURES) == 120 and len(set(FEATURE_NAMES)) == 120, "the catalog has 120 features"
assert len(TARGETS) == 6


def _catalog_version() -> str:
    """A digest of everything the registry declares (key columns, and each feature's and target's name, group,
    definition, unit, type, nullability, bounds, in order): any change to the catalog changes it."""
    import hashlib
    import json

    content = [list(KEY_COLUMNS)] + [[f.name, f.group, f.definition, f.unit, f.dtype, f.never_null_when_full,
                                      list(f.bounds) if f.bounds else None] for f in FEATURES + TARGETS]
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()[:16]


# The version of the feature catalog: what a training set or a model records, and what a Gold commit may
# record in its snapshot summary (`crypto.feature-catalog-version`) so readers can tell days built apart.
FEATURE_CATALOG_VERSION = _catalog_version()
# The key under which a Gold commit records the catalog version it was computed with (in its snapshot summary,
# as crypto.<key>), so a reader can tell which days were computed alike.
CATALOG_VERSION_KEY = "feature-catalog-version"


def gold_columns() -> list[tuple[str, str]]:
    """(column, Spark SQL type) of the Gold table, in order."""
    spark_type = {DOUBLE: "double", INT: "int"}
    return list(KEY_COLUMNS) + [(f.name, spark_type[f.dtype]) for f in FEATURES + TARGETS]


def catalog_markdown() -> str:
    """The generated section of the docs (docs/feature_catalog.md)."""
    lines = [
        "# Gold feature catalog (generated)",
        "",
        "Generated from `crypto_assets/contracts/gold_features.py` by `crypto-pipeline docs`; do not edit by hand.",
        "The rules (ordering, lookback, causality, targets) are those of the spec, summarized in the README.",
        "",
        f"{len(FEATURES)} features and {len(TARGETS)} targets. Key columns: "
        + ", ".join(f"`{n}`" for n, _ in KEY_COLUMNS) + ".",
        "",
        "| # | column | group | type | unit | null once the lookback is full | range | definition |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, f in enumerate(FEATURES + TARGETS, 1):
        bounds = f"[{f.bounds[0]:g}, {f.bounds[1]:g}]" if f.bounds else ""
        nullable = "never" if f.never_null_when_full else "possible"
        lines.append(f"| {i} | `{f.name}` | {f.group} | {f.dtype} | {f.unit} | {nullable} | {bounds} | {f.definition} |")
    return "\n".join(lines) + "\n"
