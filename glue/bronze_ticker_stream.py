"""AWS Glue streaming job: Kafka topic of ticker -> the Bronze Iceberg table, one append
commit per micro-batch (exactly once), checkpoint in S3.

Arguments: `STREAM_ARGS` of `crypto_assets.contracts.glue_jobs`, each required (none has a default: a missing
one fails the run with one line naming it), `IF_SET_ARGS` when their settings are set, and `--run_seconds`
to stop after that long (tests; without it the job runs until stopped). The stream is
`crypto_assets.bronze.stream.start_bronze_stream`, the local stream's, through Spark's Iceberg
catalog (Glue's `--conf` from deploy).
"""

from crypto_assets.glue_jobs.jobs import bronze_stream_job

if __name__ == "__main__":
    bronze_stream_job("ticker")
