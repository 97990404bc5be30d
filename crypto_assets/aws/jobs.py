"""The Glue jobs of the project: which entry script in `glue/` each runs, and their names (no Dagster here)."""

from __future__ import annotations

# Dagster asset (or streaming job) -> Glue entry script in `glue/`.
BATCH_JOBS = {"silver_trades": "silver_trades.py", "silver_ticker": "silver_ticker.py", "gold_features": "gold_features.py"}
STREAM_JOBS = {"bronze_trades_stream": "bronze_trades_stream.py", "bronze_ticker_stream": "bronze_ticker_stream.py"}


def job_name(prefix: str, job: str) -> str:
    """`<prefix>-<job with dashes>`, e.g. crypto-lakehouse-silver-trades."""
    return f"{prefix}-{job.replace('_', '-')}"
