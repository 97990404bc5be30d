"""AWS Glue job: maintenance of one lake table, launched by Dagster's `lake_maintenance` job through Pipes.

Arguments: `MAINTENANCE_ARGS` of `crypto_assets.contracts.glue_jobs` (the table, the lake and its catalog, how
many hours and snapshots of history to keep), each required, plus Dagster Pipes' own. The work is the local
job's: `crypto_assets.lake.maintenance.maintain_table` (Iceberg's Spark procedures: compact, expire snapshots,
remove orphan files) on Glue's Spark, against the Glue Data Catalog.
"""

from crypto_assets.glue_jobs.jobs import maintenance_job

if __name__ == "__main__":
    maintenance_job()
