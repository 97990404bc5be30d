"""Where a partition's step runs (`CRYPTO_COMPUTE`): the `compute` resource the Bronze, Silver and Gold
assets call, with one implementation per compute. `LocalCompute` is here; `GlueCompute` (a Glue job
run per partition, through Dagster Pipes) is in `orchestration/glue.py`. `definitions.py` binds one of
them from a single mapping keyed by the setting, so no asset asks which compute it runs on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date

from dagster import AssetExecutionContext, ConfigurableResource, Failure, MaterializeResult, OpExecutionContext

from crypto_assets.bronze.build import BronzeIntegrityError, build_bronze_day
from crypto_assets.bronze.report import bronze_report
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.settings import Settings
from crypto_assets.contracts.tables import TableDef
from crypto_assets.gold.build import build_gold
from crypto_assets.gold.candles_build import build_candles
from crypto_assets.gold.candles_report import candles_report
from crypto_assets.gold.report import gold_progress, gold_report
from crypto_assets.lake.catalog import CatalogError
from crypto_assets.lake.maintenance import MaintenanceStats, maintain_table
from crypto_assets.orchestration.keys import GOLD_KEY, candles_key, silver_key
from crypto_assets.orchestration.reporting import check_results, metadata_values
from crypto_assets.orchestration.resources.kafka import KafkaResource, KafkaUnavailableError
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.orchestration.resources.spark import SparkResource
from crypto_assets.silver.build import BronzeMissingError, build_silver
from crypto_assets.silver.report import silver_progress, silver_report


def asset_kinds(settings: Settings, *computed_with: str) -> set[str]:
    """An asset's kinds in the UI: what computes its step (most telling first), led by `glue` when the step
    runs as a Glue job; Dagster allows three."""
    kinds = ["glue", *computed_with] if settings.compute == "glue" else list(computed_with)
    return set(kinds[:3])


class ComputeResource(ConfigurableResource, ABC):
    """Builds one partition and returns what its asset reports (metadata and check results), wherever it runs."""

    @abstractmethod
    def bronze_day(self, context: AssetExecutionContext, kind: str, day: date, rules: SilverRules) -> MaterializeResult:
        """Rewrites Bronze `kind` for ingest day `day` from Kafka; the metadata names the products seen."""

    @abstractmethod
    def silver_partition(self, context: AssetExecutionContext, kind: str, day: date, product: str, rules: SilverRules,
                         require_bronze_day: bool, full: bool = False) -> MaterializeResult:
        """Brings Silver and quarantine (day, product) up to date: incrementally, or rebuilt whole with `full`; with
        `require_bronze_day`, a Bronze day never written fails the step with one line (else Silver is empty)."""

    @abstractmethod
    def gold_partition(self, context: AssetExecutionContext, day: date, product: str,
                       full: bool = False) -> MaterializeResult:
        """Brings Gold features (day, product) up to date: incrementally, or rebuilt whole with `full`."""

    @abstractmethod
    def candles_partition(self, context: AssetExecutionContext, interval: str, day: date,
                          product: str, full: bool = False) -> MaterializeResult:
        """Brings the `interval` candles (day, product) up to date (`gold.candles_build.build_candles`):
        incrementally, or rebuilt whole with `full`."""

    @abstractmethod
    def maintain_table(self, context: OpExecutionContext, t: TableDef, retention_hours: int,
                       max_snapshots: int) -> MaintenanceStats:
        """Compacts `t`, expires its snapshots beyond the retention and removes its orphan files
        (`lake.maintenance.maintain_table`); returns what changed."""


def step_failure(message: str) -> Failure:
    """A step that failed for a reason the user can fix: its one line, no retry."""
    return Failure(description=message, allow_retries=False)


class LocalCompute(ComputeResource):
    """compute = local: the steps run in the Dagster run's process (Spark for Bronze, Arrow for Silver and Gold)."""

    spark: SparkResource
    kafka: KafkaResource
    lake: LakeResource
    # Bronze windows up to this many records skip Spark (CRYPTO_BRONZE_ARROW_MAX_RECORDS; 0: always Spark).
    bronze_arrow_max_records: int = 0

    def bronze_day(self, context, kind, day, rules):
        limit = self.bronze_arrow_max_records
        try:
            # The session is started only if the window is read with Spark: a small day starts no JVM.
            stats = build_bronze_day(self.spark.get_session, self.kafka, self.lake, kind, day, rules,
                                     run_id=context.run_id, arrow_max_records=limit)
        except (KafkaUnavailableError, BronzeIntegrityError, CatalogError) as exc:
            raise step_failure(str(exc)) from None
        context.log.info(
            f"bronze {kind} {day}: {stats.rows} rows ({stats.malformed} malformed) in {stats.files} files, "
            f"{stats.bytes_written} bytes -> {stats.table} snapshot {stats.snapshot_id}"
        )
        return MaterializeResult(metadata=metadata_values(bronze_report(stats)))

    def silver_partition(self, context, kind, day, product, rules, require_bronze_day, full=False):
        # Silver computes with Arrow: no Spark session, no JVM.
        try:
            stats = build_silver(self.lake, kind, day, [product], rules, require_bronze_day=require_bronze_day,
                                 run_id=context.run_id, full=full)[product]
        except (BronzeMissingError, CatalogError) as exc:
            raise step_failure(str(exc)) from None
        context.log.info(f"silver {kind} {day} {product}: {silver_progress(stats)}")
        context.log.info(
            f"silver {kind} {day} {product}: {stats.rows} rows, {stats.duplicates} duplicates, "
            f"{stats.quarantined} quarantined {stats.quarantined_by_reason or ''} from Bronze {stats.bronze_days} "
            f"(snapshot {stats.bronze_snapshot_id}) -> {stats.table} snapshot {stats.snapshot_id}"
        )
        metadata, checks = silver_report(kind, stats)
        return MaterializeResult(metadata=metadata_values(metadata), check_results=check_results(silver_key(kind), checks))

    def gold_partition(self, context, day, product, full=False):
        # Gold computes with Arrow: no Spark session, no JVM.
        try:
            s = build_gold(self.lake, day, [product], run_id=context.run_id, full=full)[product]
        except CatalogError as exc:
            raise step_failure(str(exc)) from None
        context.log.info(
            f"gold {day} {product} ({gold_progress(s)}): {s.rows} rows ({s.training_ready} training-ready), "
            f"{s.excluded_lookback} excluded for lookback{'; ' + s.empty_reason if s.empty_reason else ''} "
            f"-> {s.table} snapshot {s.snapshot_id}"
        )
        metadata, checks = gold_report(s)
        return MaterializeResult(metadata=metadata_values(metadata), check_results=check_results(GOLD_KEY, checks))

    def candles_partition(self, context, interval, day, product, full=False):
        # Candles compute with Arrow/NumPy: no Spark session, no JVM.
        try:
            s = build_candles(self.lake, interval, day, [product], run_id=context.run_id, full=full)[product]
        except CatalogError as exc:
            raise step_failure(str(exc)) from None
        context.log.info(f"candles {interval} {day} {product}: {s.rows} windows from {s.input_rows} input rows"
                         f"{'; ' + s.empty_reason if s.empty_reason else ''} -> {s.table} snapshot {s.snapshot_id}")
        metadata, checks = candles_report(s)
        return MaterializeResult(metadata=metadata_values(metadata),
                                 check_results=check_results(candles_key(interval), checks))

    def maintain_table(self, context, t, retention_hours, max_snapshots):
        try:
            return maintain_table(self.spark.get_session(), self.lake.catalog_config, t, retention_hours,
                                  max_snapshots=max_snapshots)
        except CatalogError as exc:
            raise step_failure(str(exc)) from None
