"""AWS Glue streaming job: Kafka topic of trades -> Bronze `ingest_date` partitions, checkpoint in S3.

Arguments: --lake_root --aws_region --kafka_bootstrap --topic --checkpoint_root
[--kafka_security_protocol --kafka_sasl_mechanism --kafka_sasl_secret_id --trigger_seconds --run_seconds
--s3_endpoint_url]. Each micro-batch goes through `crypto_assets.bronze.transforms.kafka_to_bronze`,
the same mapping the Bronze assets use.
"""

from crypto_assets.glue_jobs.jobs import bronze_stream_job

if __name__ == "__main__":
    bronze_stream_job("trades")
