"""AWS Glue job: Bronze trades for one UTC ingest day from Kafka, launched by Dagster through Pipes.

Arguments: --ingest_date --lake_root --aws_region --kafka_bootstrap --topic [--kafka_timestamp_skew_minutes
--kafka_security_protocol --kafka_sasl_mechanism --kafka_sasl_secret_id --allowed_lateness_days
--s3_endpoint_url], plus Dagster Pipes' own. The work is the local asset's:
`crypto_assets.bronze.build.build_bronze_day`.
"""

from crypto_assets.glue_jobs.jobs import bronze_batch_job

if __name__ == "__main__":
    bronze_batch_job("trades")
