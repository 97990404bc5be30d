"""Where the lake lives and which Iceberg catalog holds its tables, as a Dagster resource.

The root is the Iceberg warehouse (a local folder by default, or `s3://bucket/prefix`); tables sit at
`<root>/<layer>/<table>`. The operations live in `crypto_assets.lake` (no Dagster), so the Glue
scripts share them.
"""

from __future__ import annotations

from dagster import ConfigurableResource

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.store import LakeStore


class LakeResource(ConfigurableResource, LakeStore):
    """Lake root and partition paths (local folder or S3)."""

    root: str
    s3_endpoint_url: str = ""
    aws_region: str = "us-east-1"
    catalog: str = "sql"
    catalog_uri: str = ""
    glue_database: str = "crypto_lakehouse"
    commit_retries: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> LakeResource:
        return cls(root=settings.lake_root, s3_endpoint_url=settings.s3_endpoint_url, aws_region=settings.aws_region,
                   catalog=settings.catalog_kind, catalog_uri=settings.catalog_url, glue_database=settings.glue_database,
                   commit_retries=settings.commit_retries)
