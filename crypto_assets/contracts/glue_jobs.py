"""The Glue jobs of the project: which entry script in `glue/` each runs, and their names (no Dagster here)."""

from __future__ import annotations

# Dagster asset (or streaming job) -> Glue entry script in `glue/`.
BATCH_JOBS = {
    "bronze_trades_batch": "bronze_trades_batch.py", "bronze_ticker_batch": "bronze_ticker_batch.py",
    "silver_trades": "silver_trades.py", "silver_ticker": "silver_ticker.py", "gold_features": "gold_features.py",
}
STREAM_JOBS = {"bronze_trades_stream": "bronze_trades_stream.py", "bronze_ticker_stream": "bronze_ticker_stream.py"}


def job_name(prefix: str, job: str) -> str:
    """`<prefix>-<job with dashes>`, e.g. crypto-lakehouse-silver-trades."""
    return f"{prefix}-{job.replace('_', '-')}"


def bronze_batch_job(kind: str) -> str:
    """The batch job that writes one Bronze ingest day of `kind` (trades | ticker)."""
    return f"bronze_{kind}_batch"


def kafka_kind(job: str) -> str | None:
    """trades | ticker for a job that reads Kafka (the Bronze jobs), else None."""
    if not job.startswith("bronze_"):
        return None
    return "trades" if job.startswith("bronze_trades") else "ticker"
