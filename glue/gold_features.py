"""AWS Glue job: Gold features for one event date and product, launched by Dagster through Pipes.

Arguments: `GOLD_ARGS` of `crypto_assets.glue_jobs.jobs`, each required (none has a default: a missing
one fails the run with one line naming it), `IF_SET_ARGS` when their settings are set, plus
Dagster Pipes' own. The work is the local compute's: `crypto_assets.gold.build.build_gold`.
"""

from crypto_assets.glue_jobs.jobs import gold_job

if __name__ == "__main__":
    gold_job()
