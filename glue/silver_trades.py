"""AWS Glue job: Silver trades for one event date and product, launched by Dagster through Pipes.

Arguments: --event_date --product_id --lake_root --aws_region --allowed_lateness_days
[--s3_endpoint_url] [--require_bronze_day], plus Dagster Pipes' own. The work is the local
asset's: `crypto_assets.silver.build.build_silver`.
"""

from crypto_assets.glue_jobs.jobs import silver_job

if __name__ == "__main__":
    silver_job("trades")
