"""Bronze assets: the raw Kafka records of one UTC ingest day, exactly once per offset.

With `CRYPTO_COMPUTE=glue` a materialization runs the same step as a Glue job (`bronze_on_glue`);
either way the products seen join the dynamic product partitions and, on an S3 lake, the day
is registered in the Glue Data Catalog.
"""


from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    asset,
)

from crypto_assets.bronze.build import BronzeIntegrityError, build_bronze_day
from crypto_assets.bronze.report import bronze_report
from crypto_assets.contracts.names import BRONZE_TABLE, KINDS, bronze_asset
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.settings import Settings
from crypto_assets.orchestration.glue import (
    GlueEngineResource,
    bronze_on_glue,
    register_catalog_partitions,
    reported_products,
)
from crypto_assets.orchestration.kafka_topics import OWNER, topic_asset_key
from crypto_assets.orchestration.partitions import PRODUCTS, ingest_date_partitions
from crypto_assets.orchestration.reporting import metadata_values
from crypto_assets.orchestration.resources.kafka import KafkaResource, KafkaUnavailableError
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.orchestration.resources.spark import SparkResource


def register_products(instance, products: list[str]) -> list[str]:
    """Adds products seen in Bronze to the dynamic product partitions of Silver and Gold."""
    new = [p for p in products if not instance.has_dynamic_partition(PRODUCTS.name, p)]
    if new:
        instance.add_dynamic_partitions(PRODUCTS.name, new)
    return new


def build_bronze_asset(kind: str, settings: Settings) -> AssetsDefinition:
    table = BRONZE_TABLE[kind]
    rules = SilverRules(allowed_lateness_days=settings.allowed_lateness_days)

    @asset(
        name=bronze_asset(kind),
        description=(
            f"Raw `{settings.trades_topic if kind == 'trades' else settings.ticker_topic}` records of one UTC "
            f"ingest day, one row per Kafka offset: topic, partition, offset, Kafka timestamp, raw value, "
            f"ingest headers and the parsed envelope. Unparseable records are kept and flagged "
            f"(`is_malformed`, `malformed_reason`). Written to `bronze/{table}/ingest_date=YYYY-MM-DD/`."
        ),
        partitions_def=ingest_date_partitions(settings),
        group_name="bronze",
        kinds={"spark", "parquet", "kafka"},
        owners=[OWNER],
        deps=[topic_asset_key(kind)],
        tags={"layer": "bronze"},
    )
    def _bronze(
        context: AssetExecutionContext, spark: SparkResource, kafka: KafkaResource, lake: LakeResource,
        glue: GlueEngineResource,
    ) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        written = {"ingest_date": day.isoformat()}
        if settings.compute == "glue":
            result = bronze_on_glue(context, glue, lake, kafka, kind, day.isoformat(), rules.allowed_lateness_days)
            register_products(context.instance, reported_products(result))
            register_catalog_partitions(context, glue, lake, [("bronze", table)], written)
            return result
        try:
            stats = build_bronze_day(spark.get_session(), kafka, lake, kind, day, rules)
        except (KafkaUnavailableError, BronzeIntegrityError) as exc:
            raise Failure(description=str(exc), allow_retries=False) from None
        register_products(context.instance, stats.products)
        context.log.info(
            f"bronze {kind} {day}: {stats.rows} rows ({stats.malformed} malformed) in {stats.files} files, "
            f"{stats.bytes_written} bytes -> {stats.path}"
        )
        register_catalog_partitions(context, glue, lake, [("bronze", table)], written)
        return MaterializeResult(metadata=metadata_values(bronze_report(stats)))

    return _bronze


def bronze_assets(settings: Settings) -> list[AssetsDefinition]:
    return [build_bronze_asset(kind, settings) for kind in KINDS]
