"""Where the lake lives and the few file operations assets need around Spark's writes.

Layout: `<root>/<layer>/<table>/<col>=<value>/.../*.parquet` (Hive-style partition folders).
The root is a local folder by default, or `s3://bucket/prefix`; the operations live in
`crypto_assets.lake.store` (no Dagster) so the Glue scripts share them.
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

    @classmethod
    def from_settings(cls, settings: Settings) -> LakeResource:
        return cls(root=settings.lake_root, s3_endpoint_url=settings.s3_endpoint_url, aws_region=settings.aws_region)
