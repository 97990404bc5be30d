"""AWS Glue job: Gold features for one event date and product, launched by Dagster through Pipes.

Arguments: --event_date --product_id --lake_root --aws_region [--s3_endpoint_url], plus Dagster
Pipes' own. The work is the local asset's: `crypto_assets.gold.build.build_gold`.
"""

from crypto_assets.glue_jobs.jobs import gold_job

if __name__ == "__main__":
    gold_job()
