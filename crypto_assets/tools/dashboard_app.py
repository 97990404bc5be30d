"""The Streamlit app of `crypto-pipeline dashboard` (started by `tools.dashboard`, never imported by the package).

Three views, picked in the sidebar (or `?view=market|features|health`): the market (candles, volume, spread),
a Gold feature over time beside the price and its distribution, and the pipeline's health (rows per layer
and partition, quarantine by reason over time, trade id gaps, the age of the newest trade when Gold
committed it). Every refresh (CRYPTO_DASHBOARD_REFRESH_SECONDS) reads each table at its newest snapshot
through `lake.sql.LakeSql`; results are cached per snapshot, so an unchanged lake costs no rereading.
Asset check results are not in the lake's tables (they are Dagster's records): the health view points to
the Dagster UI for them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import altair as alt
import pandas as pd
import streamlit as st

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.catalog import CatalogConfig
from crypto_assets.tools import dashboard_queries as q

VIEWS = {"market": "Market", "features": "Features", "health": "Pipeline health"}
DEFAULT_FEATURE = "rsi_14"
UP, DOWN = "#26a69a", "#ef5350"
UTC_AXIS = alt.Axis(title="time (UTC)", format="%H:%M", tickMinStep=60_000, labelOverlap=True)  # 24 h, whole minutes
WIDTH = 940  # concatenated charts do not stretch to the container: a width that fits a laptop's wide layout
EMPTY_LAKE = ("The lake at `{root}` holds no data yet. Run `make demo` (a 20-minute synthetic session through "
              "every layer, offline) or `make live`; this page refreshes by itself every {every} s.")


@st.cache_data(max_entries=128, show_spinner=False)
def _cached(name: str, args: tuple, snapshots: tuple, _view: q.LakeView) -> pd.DataFrame:
    """A query function's result for the pinned snapshots (`snapshots` is the cache key, `_view` is not hashed)."""
    return getattr(q, name)(_view, *args)


def _run(view: q.LakeView, name: str, *args) -> pd.DataFrame:
    return _cached(name, args, view.snapshot_key(), view)


@st.cache_data(max_entries=512, show_spinner=False)
def _gold_commit(snapshot_id: int, committed_at: datetime, _view: q.LakeView) -> q.GoldCommit:
    return q.gold_commit(_view, snapshot_id, committed_at)


def _svg(chart: alt.TopLevelMixin, description: str) -> alt.TopLevelMixin:
    """SVG (text in the page, readable by tests and screen readers) and a description."""
    return chart.properties(usermeta={"embedOptions": {"renderer": "svg"}}, description=description)


def _utc_text(times: pd.Series) -> pd.Series:
    return times.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M UTC")


def _pick_partition(rows: pd.DataFrame, table: str, key: str) -> tuple[str, object]:
    """Product and day selectors over the partitions of `table` that hold rows (newest day first)."""
    found = q.product_days(rows, table)
    left, right = st.columns(2)
    products = sorted(found["product_id"].unique())
    product = left.selectbox("Product", products, key=f"{key}_product")
    days = list(found[found["product_id"] == product]["day"])
    day = right.selectbox("Day (UTC)", days, key=f"{key}_day", format_func=lambda d: d.isoformat())
    return product, day


# ---- market ------------------------------------------------------------------------------------------------

def candle_chart(c: pd.DataFrame) -> alt.TopLevelMixin:
    c = c.assign(window_end=c["window_start"] + timedelta(seconds=50), minute=_utc_text(c["window_start"]))
    zoom = alt.selection_interval(bind="scales", encodings=["x"])
    x = alt.X("window_start:T", scale=alt.Scale(type="utc"), axis=UTC_AXIS)
    color = alt.condition("datum.open <= datum.close", alt.value(UP), alt.value(DOWN))
    tips = ["minute:N", "open:Q", "high:Q", "low:Q", "close:Q", "volume:Q", "trade_count:Q", "vwap:Q"]
    base = alt.Chart(c).encode(x=x)
    wick = base.mark_rule().encode(y=alt.Y("low:Q", scale=alt.Scale(zero=False), title="price"), y2="high:Q",
                                   color=color)
    body = base.mark_bar().encode(x2="window_end:T", y="open:Q", y2="close:Q", color=color, tooltip=tips)
    price = (wick + body).add_params(zoom).properties(height=340, width=WIDTH)
    volume = base.mark_bar().encode(x2="window_end:T", y=alt.Y("volume:Q", title="volume"), y2=alt.datum(0),
                                    color=color, tooltip=tips).properties(height=110, width=WIDTH)
    spread = base.mark_line(point=True).encode(
        y=alt.Y("mean_spread:Q", title="mean spread", scale=alt.Scale(zero=False)),
        tooltip=["minute:N", "mean_spread:Q", "last_best_bid:Q", "last_best_ask:Q"],
    ).properties(height=110, width=WIDTH)
    # One zoom, on the price panel: the panels share the x scale, so all three follow it.
    return alt.vconcat(price, volume, spread).resolve_scale(x="shared")


def market(view: q.LakeView, rows: pd.DataFrame) -> None:
    if not view.has_table(q.CANDLES_1M) or q.product_days(rows, q.CANDLES_1M).empty:
        st.warning(f"`{q.CANDLES_1M}` holds no rows yet: materialize the asset `{q.CANDLES_ASSET}` (Dagster UI, "
                   f"`make ui`; with `make live` the sensors do it after Silver).")
        return
    product, day = _pick_partition(rows, q.CANDLES_1M, "market")
    c = _run(view, "candles", product, day)
    title = f"{product} {day.isoformat()}: one-minute candles"
    st.subheader(title)
    if c["mean_spread"].isna().all():
        st.caption("No ticker quotes for this product-day: the spread panel stays empty.")
    chart = _svg(candle_chart(c), f"candles of {product} on {day.isoformat()}")
    st.altair_chart(chart, width="content", key="candles")
    st.caption(f"{len(c)} minutes with trades (minutes without a trade have no candle); drag to pan, "
               f"scroll to zoom the time axis, double-click to reset.")


# ---- features ----------------------------------------------------------------------------------------------

def features(view: q.LakeView, rows: pd.DataFrame) -> None:
    if q.product_days(rows, q.GOLD).empty:
        st.warning(f"`{q.GOLD}` holds no rows yet: materialize the asset `{q.GOLD}` (its sensor does it after "
                   f"Silver), or run `make demo`.")
        return
    product, day = _pick_partition(rows, q.GOLD, "features")
    names = q.feature_names()
    feature = st.selectbox("Feature", names, index=names.index(DEFAULT_FEATURE), key="feature")
    per_minute = _run(view, "feature_per_minute", product, day, feature)
    title = f"{product} {day.isoformat()}: {feature}"
    st.subheader(title)
    per_minute = per_minute.assign(minute_text=_utc_text(per_minute["minute"]))
    zoom = alt.selection_interval(bind="scales", encodings=["x"])
    x = alt.X("minute:T", scale=alt.Scale(type="utc"), axis=UTC_AXIS)
    base = alt.Chart(per_minute).encode(x=x, tooltip=["minute_text:N", "price:Q", "value:Q", "trades:Q"])
    price = base.mark_line(color="#555").encode(y=alt.Y("price:Q", scale=alt.Scale(zero=False),
                                                        title="price (mean per minute)"))
    value = base.mark_line(color="#1f77b4").encode(y=alt.Y("value:Q", scale=alt.Scale(zero=False),
                                                           title=f"{feature} (mean per minute)"))
    over_time = alt.vconcat(price.add_params(zoom).properties(height=200, width=WIDTH * 3 // 5),
                            value.properties(height=200, width=WIDTH * 3 // 5)).resolve_scale(x="shared")
    left, right = st.columns([3, 2])
    left.altair_chart(_svg(over_time, f"{feature} over time"), width="content", key="feature_time")
    hist = _run(view, "feature_histogram", product, day, feature)
    histogram = alt.Chart(hist).mark_bar(color="#1f77b4").encode(
        x=alt.X("bin_start:Q", bin="binned", title=feature), x2="bin_end:Q", y=alt.Y("rows:Q", title="Gold rows"),
        tooltip=["bin_start:Q", "bin_end:Q", "rows:Q"]).properties(height=430, title=f"distribution of {feature}")
    right.altair_chart(_svg(histogram, f"distribution of {feature}"), width="stretch", key="feature_hist")
    st.caption(f"{int(per_minute['trades'].sum()):,} Gold rows; the curve is the mean per minute, the histogram "
               f"counts every finite value.")


# ---- pipeline health ---------------------------------------------------------------------------------------

def health(view: q.LakeView, rows: pd.DataFrame) -> None:
    st.subheader("Rows per layer and partition")
    shown = rows[rows["rows"] > 0].assign(product_id=rows["product_id"].fillna("(all: ingest day)"),
                                          day=rows["day"].map(lambda d: d.isoformat()))
    chart = alt.Chart(shown).mark_bar().encode(
        x=alt.X("rows:Q", title="rows"), y=alt.Y("table_name:N", title=None, sort=q.TABLE_ORDER, axis=alt.Axis(labelLimit=400)),
        color=alt.Color("day:N", title="day"), tooltip=["table_name:N", "product_id:N", "day:N", "rows:Q"],
    ).properties(height=34 * max(1, shown["table_name"].nunique()), title="rows per table, by day")
    st.altair_chart(_svg(chart, "rows per table and day"), width="stretch", key="rows")
    pivot = shown.pivot_table(index=["day", "product_id"], columns="table_name", values="rows", aggfunc="sum",
                              fill_value=0)
    st.table(pivot[[t for t in q.TABLE_ORDER if t in pivot.columns]].reset_index().set_index("day"))  # HTML text

    st.subheader("Quarantine by reason over time")
    bucket = st.radio("Per", q.QUARANTINE_BUCKETS, horizontal=True, key="bucket")
    quarantined = _run(view, "quarantine_over_time", bucket)
    if quarantined.empty:
        st.success("No item was quarantined.")
    else:
        quarantined = quarantined.assign(reason=quarantined["kind"] + ": " + quarantined["reason"],
                                         time_text=_utc_text(quarantined["time"]))
        chart = alt.Chart(quarantined).mark_bar().encode(
            x=alt.X("time:T", scale=alt.Scale(type="utc"), title=f"ingest {bucket} (UTC)"),
            y=alt.Y("items:Q", title="items"), color=alt.Color("reason:N", title="reason"),
            tooltip=["time_text:N", "reason:N", "items:Q"],
        ).properties(height=220, title=f"quarantined items per {bucket}")
        st.altair_chart(_svg(chart, "quarantine by reason"), width="stretch", key="quarantine")

    st.subheader("Trade id gaps (Silver)")
    gaps = _run(view, "trade_id_gaps")
    st.table(gaps.assign(event_date=gaps["event_date"].map(lambda d: d.isoformat())).set_index("product_id"))
    st.caption("missing_ids: ids between the day's first and last trade that Silver does not hold (Coinbase ids "
               "are consecutive per product; gaps at midnight fall between days).")

    st.subheader("From a trade to its Gold row")
    ids, baseline = q.gold_data_commits(view)
    lag = q.gold_lag([_gold_commit(s, when, view) for s, when in ids], baseline)
    if lag.empty:
        st.info("No Gold commit to measure yet.")
    else:
        lag = lag.assign(committed_text=_utc_text(lag["committed_at"]), trade_text=_utc_text(lag["newest_trade"]))
        chart = alt.Chart(lag).mark_line(point=True).encode(
            x=alt.X("committed_at:T", scale=alt.Scale(type="utc"), title="Gold commit (UTC)"),
            y=alt.Y("lag_seconds:Q", title="seconds"), color=alt.Color("product_id:N", title="product"),
            tooltip=["product_id:N", "committed_text:N", "trade_text:N", "lag_seconds:Q"],
        ).properties(height=220, title="age of the newest trade when Gold committed it")
        st.altair_chart(_svg(chart, "trade to Gold lag"), width="stretch", key="lag")
        st.caption("For each Gold commit that brought newer trades of a product: commit time minus the newest "
                   "trade's time, from the table's snapshot history. While `make live` runs this is the time from a "
                   "trade to its Gold row; for the demo's replayed session it is the age of its data.")
    st.caption("Asset check results are Dagster's records, not the lake's: see them in the Dagster UI (`make ui`).")


def main() -> None:
    st.set_page_config(page_title="Crypto lakehouse", layout="wide")
    settings = Settings.from_env()
    config = CatalogConfig.from_settings(settings)
    slugs = list(VIEWS)
    asked = st.query_params.get("view", slugs[0])
    slug = st.sidebar.radio("View", slugs, index=slugs.index(asked) if asked in slugs else 0,
                            format_func=VIEWS.get, key="view")
    st.query_params["view"] = slug
    st.sidebar.caption(f"Lake: `{settings.lake_root}`. Reads the newest snapshot of every table every "
                       f"{settings.dashboard_refresh_seconds} s.")
    st.title(VIEWS[slug])

    @st.fragment(run_every=settings.dashboard_refresh_seconds)
    def body() -> None:
        view = q.LakeView(config)
        rows = q.partition_rows(view)
        if q.is_empty(rows):
            st.info(EMPTY_LAKE.format(root=settings.lake_root, every=settings.dashboard_refresh_seconds))
            return
        {"market": market, "features": features, "health": health}[slug](view, rows)
        st.caption(f"Read {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC: "
                   + ", ".join(f"{name} @ {snap}" for name, snap in view.snapshot_key() if snap is not None))

    body()


main()
