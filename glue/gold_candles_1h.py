"""AWS Glue job: 1-hour OHLCV candles rolled up from the 1-minute candles, for one event date and product, launched by Dagster through Pipes.

Arguments: `GOLD_ARGS` of `crypto_assets.contracts.glue_jobs` (the candles jobs take Gold's), each required (a
missing one fails the run with one line naming it), `IF_SET_ARGS` when their settings are set, plus Dagster Pipes'
own. The work is the local compute's: `crypto_assets.gold.candles_build.build_candles`, one commit with pyiceberg
to the Glue Data Catalog (`--glue_database`).
"""

from crypto_assets.glue_jobs.jobs import candles_job

if __name__ == "__main__":
    candles_job("1h")
