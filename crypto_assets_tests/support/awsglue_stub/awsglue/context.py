"""`GlueContext`: inside Glue it wraps the job's SparkContext; here the same, on local Spark."""

from pyspark.sql import SparkSession


class GlueContext:
    def __init__(self, spark_context):
        self.spark_context = spark_context
        self.spark_session = SparkSession(spark_context)
