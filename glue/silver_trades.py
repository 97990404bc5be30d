"""AWS Glue job: Silver trades for one event date and product, launched by Dagster through Pipes.

Arguments: `SILVER_ARGS` of `crypto_assets.contracts.glue_jobs`, each required (none has a default: a missing
one fails the run with one line naming it), `IF_SET_ARGS` when their settings are set, plus
Dagster Pipes' own. The work is the local compute's: `crypto_assets.silver.build.build_silver`,
one commit per table with pyiceberg to the Glue Data Catalog (`--glue_database`).
"""

from crypto_assets.glue_jobs.jobs import silver_job

if __name__ == "__main__":
    silver_job("trades")
