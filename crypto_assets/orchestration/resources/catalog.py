"""The Glue Data Catalog resource: after a materialization on an S3 lake, its partitions are registered
in the catalog Athena reads (whatever the compute; a local lake has no catalog to update)."""

from __future__ import annotations

from dagster import ConfigurableResource

from crypto_assets.contracts.settings import Settings


class GlueCatalogResource(ConfigurableResource):
    """Where the Glue Data Catalog is (every field a setting) and how a written partition gets into it."""

    aws_region: str
    endpoint_url: str
    database: str

    @classmethod
    def from_settings(cls, settings: Settings) -> GlueCatalogResource:
        return cls(aws_region=settings.aws_region, endpoint_url=settings.s3_endpoint_url,
                   database=settings.glue_database)

    def client(self):
        import boto3

        return boto3.client("glue", region_name=self.aws_region, endpoint_url=self.endpoint_url or None)

    def register(self, context, lake, tables: list[tuple[str, str]], values: dict[str, str]) -> None:
        """The written partition `values` of each (layer, table) into the catalog (idempotent). A catalog
        that was never deployed is not an error for the materialization: it says so once."""
        if not lake.on_s3:
            return
        from botocore.exceptions import ClientError

        from crypto_assets.lake.glue_catalog import register_partitions, table_for

        client = self.client()
        for layer, table in tables:
            t = table_for(layer, table)
            if not lake.data_files(lake.partition_path(layer, table, **values)):
                continue
            try:
                added = register_partitions(client, self.database, t, lake, [values])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                    context.log.warning(f"Glue catalog table {self.database}.{t.name} not found, partition not "
                                        f"registered: run `crypto-pipeline aws deploy` to create the catalog")
                    return
                raise
            if added:
                context.log.info(f"registered partition {values} of {self.database}.{t.name} in the Glue catalog")
