"""AWS Glue streaming job: Kafka topic of ticker -> Bronze `ingest_date` partitions, checkpoint in S3.

Arguments: `STREAM_ARGS` of `crypto_assets.glue_jobs.jobs`, each required (none has a default: a missing
one fails the run with one line naming it), `IF_SET_ARGS` when their settings are set, and `--run_seconds`
to stop after that long (tests; without it the job runs until stopped). Each micro-batch goes through
`crypto_assets.bronze.transforms.kafka_to_bronze`, the same mapping the Bronze assets use.
"""

from crypto_assets.glue_jobs.jobs import bronze_stream_job

if __name__ == "__main__":
    bronze_stream_job("ticker")
