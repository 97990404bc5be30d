"""The lake: storage (local or S3), the Bronze commit log, small-file merging, the Glue catalog, Spark settings."""
