"""Sensor ticks and their runs in this process: what the daemon does, for the demo and the tests.

The daemon evaluates a sensor, applies its dynamic-partition requests, stores its asset events
and launches its run requests; here the same sensor definitions are evaluated and each request
is executed with `materialize` (its assets, its partition, its tags) in a given instance.
"""

from __future__ import annotations

from dagster import AssetKey, SensorResult, build_sensor_context, materialize

from crypto_assets.orchestration.resources.lake import LakeResource


def tick(sensor_def, settings, instance, cursor: str | None) -> SensorResult:
    from crypto_assets.orchestration.resources.kafka import KafkaResource

    context = build_sensor_context(
        instance=instance, cursor=cursor,
        resources={"lake": LakeResource.from_settings(settings), "kafka": KafkaResource.from_settings(settings)},
    )
    return sensor_def(context)


def apply(result: SensorResult, instance) -> None:
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)


def requested(result: SensorResult) -> list[tuple[str, str]]:
    """(asset, partition key) of every run request, sorted."""
    return sorted(
        (key.to_user_string(), str(r.partition_key)) for r in result.run_requests or [] for key in r.asset_selection
    )


def execute(result: SensorResult, settings, instance, run_config: dict | None = None) -> list:
    """Runs each request the way the daemon would launch it: its assets, its partition, its tags."""
    from crypto_assets.orchestration.definitions import build_definitions, build_resources

    defs = build_definitions(settings)
    outcomes = []
    for request in result.run_requests or []:
        assets = [defs.get_assets_def(AssetKey(k.path)) for k in request.asset_selection]
        outcomes.append(materialize(
            assets, partition_key=request.partition_key, resources=build_resources(settings), instance=instance,
            tags=request.tags, raise_on_error=False, run_config=run_config or {},
        ))
    return outcomes
