"""Bronze -> Silver: new Bronze snapshots become runs of exactly the Silver partitions they feed.

Each tick asks both Bronze Iceberg tables for the snapshots committed after the last one it handled
(the cursor), from either writer (batch materializations, the streaming job), on a local or Glue
catalog, and for each append/overwrite snapshot whose provenance names the Silver partitions it feeds
returns:
- run requests for each affected (event_date, product) of silver_trades / silver_ticker,
  older dates touched by late data included, with Gold of the same partition in the same run
  (after Silver, and only if Silver's blocking checks pass: blocking holds within a run); the
  run key names the newest snapshot, so a daemon restarted without its cursor cannot launch the
  same run twice;
- dynamic-partition requests for products Bronze showed for the first time;
- Bronze materializations for the streaming job's commits, so the UI shows Bronze partitions
  the same whichever writer landed them.
Maintenance snapshots (`replace`: compaction) and deletes add no data and request nothing.
"""

import json
import time
from dataclasses import dataclass, field
from datetime import date

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterRunStatus,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from crypto_assets.bronze.summary import added_partitions
from crypto_assets.contracts.names import KINDS
from crypto_assets.contracts.settings import Settings
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake.snapshots import DATA_OPERATIONS, Provenance, snapshots_after
from crypto_assets.orchestration.keys import bronze_key, silver_key
from crypto_assets.orchestration.partitions import PRODUCTS, partition_key
from crypto_assets.orchestration.resources.kafka import KafkaResource
from crypto_assets.orchestration.resources.lake import LakeResource

MAX_SNAPSHOTS_PER_TICK = 2000  # per table; the rest wait for the next tick
ASSET_TAG = "crypto/asset"
PENDING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]


@dataclass
class SnapshotCursor:
    # Per kind: the last Bronze snapshot handled and its commit time (to resume after it was expired).
    handled: dict[str, dict[str, int]] = field(default_factory=dict)
    # Highest offset landed in Bronze per kind and Kafka partition, and when Bronze last landed anything.
    landed: dict[str, dict[str, int]] = field(default_factory=dict)
    last_landed_ms: int = 0

    @classmethod
    def parse(cls, raw: str | None) -> "SnapshotCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(handled=data.get("handled", {}), landed=data.get("landed", {}),
                   last_landed_ms=int(data.get("last_landed_ms", 0)))

    def snapshot(self, kind: str) -> tuple[int | None, int]:
        mine = self.handled.get(kind)
        return (int(mine["id"]), int(mine["ms"])) if mine else (None, 0)

    def serialize(self) -> str:
        return json.dumps({"handled": self.handled, "landed": self.landed, "last_landed_ms": self.last_landed_ms},
                          sort_keys=True)


@dataclass(frozen=True)
class BronzeWrite:
    """One Bronze snapshot that added data: what the sensor needs of it."""

    kind: str
    snapshot_id: int
    timestamp_ms: int
    provenance: Provenance
    added_records: int

    @property
    def partitions(self) -> list[list]:
        return added_partitions(self.provenance)

    @property
    def offsets(self) -> dict[str, list[int]]:
        return json.loads(self.provenance.extra.get("offsets", "{}"))

    @property
    def writer(self) -> str:
        return self.provenance.extra.get("writer", "")


def new_bronze_writes(lake: LakeResource, cursor: SnapshotCursor) -> tuple[list[BronzeWrite], SnapshotCursor]:
    """The data-adding Bronze snapshots after the cursor's, oldest first per table, and the advanced cursor."""
    writes, handled = [], dict(cursor.handled)
    for kind in KINDS:
        table = lake.table(bronze_table(kind))
        since, since_ms = cursor.snapshot(kind)
        snaps, found = snapshots_after(table, since)
        if since is not None and not found:  # the handled snapshot was expired: go by its commit time
            snaps = [s for s in snaps if s.timestamp_ms > since_ms]
        snaps = snaps[:MAX_SNAPSHOTS_PER_TICK]
        for snap in snaps:
            operation = snap.summary.operation.value if snap.summary is not None else ""
            provenance = Provenance.of(snap)
            if operation not in DATA_OPERATIONS or provenance is None or "partitions" not in provenance.extra:
                continue  # compaction (replace), deletes, and writers that are not ours add nothing to read
            added = int(snap.summary.additional_properties.get("added-records", 0))
            writes.append(BronzeWrite(kind, snap.snapshot_id, snap.timestamp_ms, provenance, added))
        if snaps:
            handled[kind] = {"id": snaps[-1].snapshot_id, "ms": snaps[-1].timestamp_ms}
    landed = {k: dict(v) for k, v in cursor.landed.items()}
    last_ms = cursor.last_landed_ms
    for w in writes:
        mine = landed.setdefault(w.kind, {})
        for partition, (_, hi) in w.offsets.items():
            mine[partition] = max(mine.get(partition, -1), int(hi))
        if w.offsets:
            last_ms = max(last_ms, w.timestamp_ms)
    return writes, SnapshotCursor(handled=handled, landed=landed, last_landed_ms=last_ms)


class StreamStalledError(RuntimeError):
    """Streaming mode: Kafka holds records the stream has not landed for too long."""


def check_stream_progress(cursor: SnapshotCursor, kafka: KafkaResource, settings: Settings, now_ms: int) -> None:
    """Fails the tick, with one line, when the streaming job has stopped landing what Kafka holds."""
    idle_s = (now_ms - cursor.last_landed_ms) / 1000
    if idle_s < settings.stream_stall_seconds:
        return
    behind = {}
    for kind in KINDS:
        landed = cursor.landed.get(kind, {})
        ends = kafka.end_offsets(kafka.topic_for(kind))
        behind[kind] = sum(max(0, end - (landed.get(str(p), -1) + 1)) for p, end in ends.items())
    if any(behind.values()):
        raise StreamStalledError(
            f"streaming Bronze has landed nothing for {idle_s:.0f} s while Kafka holds "
            + ", ".join(f"{n} newer {k} records" for k, n in behind.items() if n)
            + f": start it with `crypto-pipeline stream` (it resumes from {settings.checkpoint_root}), "
            f"or see its log (.state/live/stream.log under `make live`)"
        )


def pending_run_exists(instance, asset: AssetKey, key: str) -> bool:
    """A queued run of the same asset partition has not read its input yet: it will see the new data."""
    runs = instance.get_runs(
        filters=RunsFilter(
            statuses=PENDING, tags={"dagster/partition": key, f"{ASSET_TAG}/{asset.to_user_string()}": "1"}
        ),
        limit=1,
    )
    return bool(runs)


def _stream_materializations(write: BronzeWrite) -> list[AssetMaterialization]:
    extra = write.provenance.extra
    return [
        AssetMaterialization(
            asset_key=bronze_key(write.kind),
            partition=day,
            description="Written by the streaming Bronze job (`crypto-pipeline stream`).",
            metadata={
                "writer": MetadataValue.text("stream"),
                "snapshot_id": MetadataValue.text(str(write.snapshot_id)),
                "batch_id": MetadataValue.int(int(extra.get("batch-id", -1))),
                "stream_id": MetadataValue.text(extra.get("stream-id", "")),
                "rows_added": MetadataValue.int(int(extra.get("records", write.added_records))),
                "kafka_offsets_added": MetadataValue.json(write.offsets),
            },
        )
        for day in json.loads(extra.get("ingest-dates", "[]")) or write.provenance.partition.split(",")
    ]


def evaluate_bronze_commits(
    context: SensorEvaluationContext, lake: LakeResource, settings: Settings, kafka: KafkaResource | None = None,
    now_ms: int | None = None, follow: list[AssetKey] = (),
) -> SensorResult:
    """`follow`: assets of the same partition that run after Silver in its run (Gold)."""
    now_ms = now_ms or int(time.time() * 1000)
    cursor = SnapshotCursor.parse(context.cursor)
    if not cursor.last_landed_ms:
        cursor.last_landed_ms = now_ms  # the stall clock starts with the sensor
    writes, advanced = new_bronze_writes(lake, cursor)
    if not any(w.partitions for w in writes):
        if settings.bronze_mode == "stream" and kafka is not None:
            check_stream_progress(advanced, kafka, settings, now_ms)
        return SensorResult(skip_reason=SkipReason("no new Bronze data"), cursor=advanced.serialize())

    first = date.fromisoformat(settings.first_date)
    affected: dict[tuple[str, str, str], int] = {}  # (kind, event_date, product) -> newest snapshot id
    events, products, ignored = [], set(), 0
    for w in writes:
        if w.writer == "stream":
            events += _stream_materializations(w)
        for event_date, product, _ in w.partitions:
            if date.fromisoformat(event_date) < first:
                ignored += 1  # before the partitions begin: its ingest day's Silver quarantines it
                continue
            affected[(w.kind, event_date, product)] = w.snapshot_id
            products.add(product)

    instance = context.instance
    new_products = sorted(p for p in products if not instance.has_dynamic_partition(PRODUCTS.name, p))
    # One run per Silver partition: trades and ticker together when both changed, and what follows them
    # (Gold D) in the same run: one process instead of two, and no second sensor hop before Gold.
    by_partition: dict[tuple[str, str], dict[str, int]] = {}
    for (kind, event_date, product), newest in affected.items():
        by_partition.setdefault((event_date, product), {})[kind] = newest
    requests = []
    for (event_date, product), kinds in sorted(by_partition.items()):
        key = partition_key(event_date, product)
        assets = [silver_key(k) for k in KINDS if k in kinds and not pending_run_exists(instance, silver_key(k), str(key))]
        if not assets:
            continue
        assets += list(follow)
        names = ",".join(a.to_user_string() for a in assets)
        snaps = ",".join(f"{k}@{kinds[k]}" for k in KINDS if k in kinds)
        requests.append(RunRequest(
            run_key=f"{names}:{key}:{snaps}",
            partition_key=key,
            asset_selection=assets,
            tags={**{f"{ASSET_TAG}/{a.to_user_string()}": "1" for a in assets}, ASSET_TAG: names,
                  "crypto/trigger": "bronze_sensor"},
        ))
    context.log.info(
        f"{len(writes)} new Bronze snapshots: {len(requests)} Silver runs, "
        f"{len(new_products)} new products, {len(events)} streamed Bronze partitions recorded"
        + (f", {ignored} items before {settings.first_date} left to their ingest day" if ignored else "")
    )
    return SensorResult(
        run_requests=requests,
        cursor=advanced.serialize(),
        dynamic_partitions_requests=[PRODUCTS.build_add_request(new_products)] if new_products else [],
        asset_events=events,
    )


def build_bronze_sensor(settings: Settings, silver_assets, gold_asset=None, candle_assets=()) -> SensorDefinition:
    """`candle_assets`: the candles of the same partition, run after Silver (and Gold) in its run too."""
    follow = ([gold_asset.key] if gold_asset is not None else []) + [a.key for a in candle_assets]

    @sensor(
        name="bronze_to_silver",
        description=(
            "Reads new Bronze snapshots (batch or streaming writes) and requests the Silver "
            "partitions they touched (late data included), each run carrying Gold and the candles of its partition "
            "after Silver's blocking checks; adds new products; records streamed Bronze writes."
        ),
        minimum_interval_seconds=settings.sensor_interval_seconds,
        asset_selection=[*silver_assets, *([gold_asset] if gold_asset is not None else []), *candle_assets],
        default_status=DefaultSensorStatus.RUNNING if settings.automation == "on" else DefaultSensorStatus.STOPPED,
    )
    def bronze_to_silver(context: SensorEvaluationContext, lake: LakeResource, kafka: KafkaResource):
        return evaluate_bronze_commits(context, lake, settings, kafka, follow=follow)

    return bronze_to_silver
