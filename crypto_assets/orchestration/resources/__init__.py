"""Dagster resources: Kafka, the lake and Spark, each built from the settings."""
