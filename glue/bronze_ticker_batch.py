"""AWS Glue job: Bronze ticker for one UTC ingest day from Kafka, launched by Dagster through Pipes.

Arguments: `BRONZE_BATCH_ARGS` of `crypto_assets.contracts.glue_jobs`, each required (none has a default: a missing
one fails the run with one line naming it), `IF_SET_ARGS` when their settings are set, plus
Dagster Pipes' own. The work is the local compute's: `crypto_assets.bronze.build.build_bronze_day`, one
commit to the Bronze Iceberg table through Spark's Iceberg catalog (Glue's `--conf` from deploy).
"""

from crypto_assets.glue_jobs.jobs import bronze_batch_job

if __name__ == "__main__":
    bronze_batch_job("ticker")
