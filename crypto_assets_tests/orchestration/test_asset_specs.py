"""Snapshot of every asset spec the code location defines, for both computes.

The snapshots (`__snapshots__/test_asset_specs/*.json`) are generated, not hand-kept: after an intended
change of an asset's key, group, dependencies, partitions, checks, kinds or owners, regenerate it with
`.venv/bin/pytest crypto_assets_tests/orchestration/test_asset_specs.py --snapshot-update` and review
the diff like code. An unintended change fails here.
"""

from __future__ import annotations

import pytest
from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition, MultiPartitionsDefinition

from crypto_assets.contracts.settings import Settings
from crypto_assets.orchestration.definitions import build_definitions


def _partitions(pd) -> object:
    if pd is None:
        return None
    if isinstance(pd, MultiPartitionsDefinition):
        return {"multi": {d.name: _partitions(d.partitions_def) for d in pd.partitions_defs}}
    if isinstance(pd, DailyPartitionsDefinition):
        return {"daily": {"start": pd.start.strftime("%Y-%m-%d"), "timezone": pd.timezone,
                          "end_offset": pd.end_offset}}
    if isinstance(pd, DynamicPartitionsDefinition):
        return {"dynamic": pd.name}
    return type(pd).__name__


def asset_specs(settings: Settings) -> dict:
    """Every asset of the Definitions with what a reviewer should see change: a plain, sorted structure."""
    graph = build_definitions(settings).resolve_asset_graph()
    checks: dict[str, dict] = {}
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        checks.setdefault(check_key.asset_key.to_user_string(), {})[check_key.name] = {
            "blocking": spec.blocking, "described": bool(spec.description)}
    specs = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        name = key.to_user_string()
        specs[name] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": _partitions(node.partitions_def),
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "executable": node.is_executable,
            "described": bool(node.description),
            "automation": type(node.automation_condition).__name__ if node.automation_condition else None,
            "checks": dict(sorted(checks.get(name, {}).items())),
        }
    return specs


@pytest.mark.parametrize("compute", ["local", "glue"])
def test_asset_specs_match_the_snapshot(compute, snapshot_json):
    settings = Settings.from_env(environ={}, home="/srv/project", first_date="2024-01-01", compute=compute,
                                 lake_root="s3://lake-bucket/lake")
    assert asset_specs(settings) == snapshot_json


@pytest.fixture
def snapshot_json(snapshot):
    from syrupy.extensions.json import JSONSnapshotExtension

    return snapshot.use_extension(JSONSnapshotExtension)
