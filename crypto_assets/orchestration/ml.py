"""The Gold baseline model asset (daily, on Gold's event day) and its schedule (`crypto_assets.ml`)."""

from datetime import date, timedelta

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DefaultScheduleStatus,
    MaterializeResult,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    asset,
    schedule,
)

from crypto_assets.contracts.names import BASELINE_ASSET
from crypto_assets.contracts.settings import Settings
from crypto_assets.ml.baseline import CLASSIFIER_TARGET, REGRESSOR_TARGET, BaselineConfig, train_baseline
from crypto_assets.ml.export import TrainingDataError
from crypto_assets.ml.report import BASELINE_CHECKS, baseline_report
from crypto_assets.orchestration.kafka_topics import OWNER
from crypto_assets.orchestration.keys import GOLD_KEY
from crypto_assets.orchestration.partitions import EVENT_DATE, event_date_product_partitions, event_days_of_ingest_day
from crypto_assets.orchestration.reporting import check_results, check_specs, metadata_values
from crypto_assets.orchestration.resources.compute import step_failure
from crypto_assets.orchestration.resources.lake import LakeResource

BASELINE_KEY = AssetKey(BASELINE_ASSET)


def build_baseline_asset(settings: Settings) -> AssetsDefinition:
    days = event_date_product_partitions(settings).get_partitions_def_for_dimension(EVENT_DATE)

    @asset(
        key=BASELINE_KEY,
        description=(
            f"A LightGBM baseline on Gold: a classifier of {CLASSIFIER_TARGET} and a regressor of {REGRESSOR_TARGET} "
            f"trained on the training-ready rows of the {settings.baseline_train_days} days before the partition's day "
            "(CRYPTO_BASELINE_TRAIN_DAYS) and tested on that day: a purged walk-forward step (training rows whose "
            "targets reach the test day are left out). One pinned Gold snapshot; reports AUC, log loss, accuracy "
            "against the majority class, the information coefficient, calibration, the top features by gain. The "
            "models and their manifest are saved under <lake root>/_models/gold_baseline_model/."
        ),
        partitions_def=days,
        group_name="ml",
        kinds={"lightgbm", "python"},
        owners=[OWNER],
        tags={"layer": "ml"},
        deps=[AssetDep(GOLD_KEY, partition_mapping=event_days_of_ingest_day())],
        check_specs=check_specs(BASELINE_KEY, BASELINE_CHECKS),
    )
    def gold_baseline_model(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        try:
            result = train_baseline(lake.catalog_config, day, BaselineConfig.from_settings(settings),
                                    run_id=context.run_id)
        except TrainingDataError as exc:
            raise step_failure(str(exc)) from None
        metadata, checks = baseline_report(result)
        return MaterializeResult(metadata=metadata_values(metadata), check_results=check_results(BASELINE_KEY, checks))

    return gold_baseline_model


def build_baseline_schedule(settings: Settings, baseline: AssetsDefinition) -> ScheduleDefinition:
    """Trains on yesterday's Gold (complete once today's first trades filled its last targets)."""

    @schedule(
        name="gold_baseline_daily",
        cron_schedule=settings.baseline_cron,
        execution_timezone="UTC",
        target=baseline,
        description="Materializes gold_baseline_model for yesterday (CRYPTO_BASELINE_CRON), with CRYPTO_BASELINE_MODEL=on.",
        default_status=DefaultScheduleStatus.RUNNING if settings.automation == "on" else DefaultScheduleStatus.STOPPED,
    )
    def gold_baseline_daily(context: ScheduleEvaluationContext):
        day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
        return RunRequest(run_key=f"baseline:{day}", partition_key=day, tags={"crypto/trigger": "baseline_schedule"})

    return gold_baseline_daily
