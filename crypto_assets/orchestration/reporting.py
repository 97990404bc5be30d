"""The layers' reports (`contracts/reporting.py`) in Dagster's types: check specs, metadata values, check results."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from crypto_assets.contracts.reporting import CheckReport, Metadata

# Dagster Pipes' metadata type names, which the reports use -> Dagster's constructors.
METADATA_VALUE = {"int": MetadataValue.int, "json": MetadataValue.json, "path": MetadataValue.path,
                  "text": MetadataValue.text, "md": MetadataValue.md, "bool": MetadataValue.bool,
                  "float": MetadataValue.float}


def check_specs(asset_key: AssetKey, checks: dict[str, tuple[bool, str]]) -> list[AssetCheckSpec]:
    """The specs of the checks declared as name -> (blocking, description)."""
    return [AssetCheckSpec(name, asset=asset_key, blocking=blocking, description=description)
            for name, (blocking, description) in checks.items()]


def metadata_values(metadata: Metadata) -> dict[str, MetadataValue]:
    return {name: METADATA_VALUE[kind](value) for name, (kind, value) in metadata.items()}


def check_results(asset_key: AssetKey, checks: list[CheckReport]) -> list[AssetCheckResult]:
    return [
        AssetCheckResult(asset_key=asset_key, check_name=c.name, passed=c.passed,
                         severity=AssetCheckSeverity(c.severity), metadata=metadata_values(c.metadata))
        for c in checks
    ]
