"""Dagster-free entry points of the AWS Glue jobs: the layers' build steps, reported through Pipes."""
