"""The Dagster code location: every asset, resource and partition definition, in one place."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from crypto_assets.contracts.settings import Settings
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.bronze_schedule import build_bronze_schedule
from crypto_assets.orchestration.bronze_sensor import build_bronze_sensor
from crypto_assets.orchestration.candles import build_candle_assets
from crypto_assets.orchestration.glue import GlueCompute
from crypto_assets.orchestration.gold import build_gold_asset
from crypto_assets.orchestration.gold_sensor import build_gold_sensor
from crypto_assets.orchestration.kafka_topics import kafka_topic_specs
from crypto_assets.orchestration.maintenance import build_maintenance_job, build_maintenance_schedule
from crypto_assets.orchestration.ml import build_baseline_asset, build_baseline_schedule
from crypto_assets.orchestration.partitions import with_first_day
from crypto_assets.orchestration.resources.compute import ComputeResource, LocalCompute
from crypto_assets.orchestration.resources.kafka import KafkaResource
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.orchestration.resources.spark import SparkResource
from crypto_assets.orchestration.silver import silver_assets


def build_resources(settings: Settings) -> dict:
    """The resources of the code location; every value comes from `Settings`. `compute` (where Bronze, Silver
    and Gold partitions are built) is chosen from one mapping keyed by CRYPTO_COMPUTE."""
    spark = SparkResource.from_settings(settings)
    kafka = KafkaResource.from_settings(settings)
    lake = LakeResource.from_settings(settings)
    compute: dict[str, ComputeResource] = {
        "local": LocalCompute(spark=spark, kafka=kafka, lake=lake,
                              bronze_arrow_max_records=settings.bronze_arrow_max_records),
        "glue": GlueCompute.from_settings(settings, lake=lake, kafka=kafka),
    }
    return {
        "spark": spark,
        "kafka": kafka,
        "lake": lake,
        "compute": compute[settings.compute],
    }


def build_definitions(settings: Settings | None = None) -> Definitions:
    settings = with_first_day(settings or Settings.from_env())  # the sensors read settings.first_date too
    bronze, silver, gold = bronze_assets(settings), silver_assets(settings), build_gold_asset(settings)
    candles = build_candle_assets(settings)
    baseline = build_baseline_asset(settings)
    # The baseline's daily schedule exists with CRYPTO_BASELINE_MODEL=on (`make live`); the asset always does.
    baseline_schedules = [build_baseline_schedule(settings, baseline)] if settings.baseline_model == "on" else []
    maintenance = build_maintenance_job(settings)
    return Definitions(
        assets=[*kafka_topic_specs(settings), *bronze, *silver, gold, *candles, baseline],
        jobs=[maintenance],
        schedules=[build_bronze_schedule(settings, bronze), build_maintenance_schedule(settings, maintenance),
                   *baseline_schedules],
        sensors=[build_bronze_sensor(settings, silver, gold, candles), build_gold_sensor(settings, gold, candles)],
        resources=build_resources(settings),
        # One process per run, not one more per step: a sensor-driven run (Silver, then Gold, of one
        # partition) is mostly the cost of starting a process.
        executor=in_process_executor,
    )


defs = build_definitions()
