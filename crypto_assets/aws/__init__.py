"""AWS production path: Glue Data Catalog tables, and the `crypto-pipeline aws deploy | destroy` command."""
