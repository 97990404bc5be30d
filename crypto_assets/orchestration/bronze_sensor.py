"""Bronze -> Silver: new Bronze commits become runs of exactly the Silver partitions they touched.

Each tick reads the Bronze commits (`crypto_assets.lake.commits`) it has not seen, from either
writer (batch materializations, the streaming job), on a local disk or S3, and returns:
- run requests for each affected (event_date, product) of silver_trades / silver_ticker,
  older dates touched by late data included, with Gold of the same partition in the same run
  (after Silver, and only if Silver's blocking checks pass: blocking holds within a run); the
  run key names the newest commit, so a daemon restarted without its cursor cannot launch the
  same run twice;
- dynamic-partition requests for products Bronze showed for the first time;
- Bronze materializations for the streaming job's writes, so the UI shows Bronze partitions
  the same whichever writer landed them.
The cursor (returned with every result) holds the commits seen within a grace window.
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

from crypto_assets.contracts.names import KINDS
from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.commits import BronzeCommit, commit_time_ms, list_commit_names, read_commit
from crypto_assets.orchestration.keys import bronze_key, silver_key
from crypto_assets.orchestration.partitions import PRODUCTS, partition_key
from crypto_assets.orchestration.resources.kafka import KafkaResource
from crypto_assets.orchestration.resources.lake import LakeResource

# Commits are named when written, so one older than the newest seen by this much cannot still appear.
GRACE_MS = 15 * 60 * 1000
MAX_COMMITS_PER_TICK = 2000
ASSET_TAG = "crypto/asset"
PENDING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]


@dataclass
class CommitCursor:
    since_ms: int = 0
    seen: set[str] = field(default_factory=set)
    # Highest offset landed in Bronze per kind and Kafka partition, and when Bronze last landed anything.
    landed: dict[str, dict[str, int]] = field(default_factory=dict)
    last_landed_ms: int = 0

    @classmethod
    def parse(cls, raw: str | None) -> "CommitCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(since_ms=int(data["since_ms"]), seen=set(data["seen"]), landed=data.get("landed", {}),
                   last_landed_ms=int(data.get("last_landed_ms", 0)))

    def advance(self, names: list[str], commits: list[BronzeCommit] = ()) -> "CommitCursor":
        seen = self.seen | set(names)
        newest = max((commit_time_ms(n) for n in seen), default=self.since_ms)
        since = max(self.since_ms, newest - GRACE_MS)
        landed = {k: dict(v) for k, v in self.landed.items()}
        for c in commits:
            mine = landed.setdefault(c.kind, {})
            for partition, (_, hi) in c.offsets.items():
                mine[partition] = max(mine.get(partition, -1), int(hi))
        return CommitCursor(since_ms=since, seen={n for n in seen if commit_time_ms(n) >= since}, landed=landed,
                            last_landed_ms=max([self.last_landed_ms, *[commit_time_ms(n) for n in names]]))

    def serialize(self) -> str:
        return json.dumps({"since_ms": self.since_ms, "seen": sorted(self.seen), "landed": self.landed,
                           "last_landed_ms": self.last_landed_ms})


class StreamStalledError(RuntimeError):
    """Streaming mode: Kafka holds records the stream has not landed for too long."""


def check_stream_progress(cursor: CommitCursor, kafka: KafkaResource, settings: Settings, now_ms: int) -> None:
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


def _stream_materializations(commit: BronzeCommit) -> list[AssetMaterialization]:
    return [
        AssetMaterialization(
            asset_key=bronze_key(commit.kind),
            partition=day,
            description="Written by the streaming Bronze job (`crypto-pipeline stream`).",
            metadata={
                "writer": MetadataValue.text("stream"),
                "batch_id": MetadataValue.int(commit.batch_id if commit.batch_id is not None else -1),
                "rows_added": MetadataValue.int(commit.rows),
                "commit": MetadataValue.text(commit.name),
                "kafka_offsets_added": MetadataValue.json(commit.offsets),
                "files": MetadataValue.json([f for f in commit.files if f"ingest_date={day}" in f]),
            },
        )
        for day in commit.ingest_dates
    ]


def evaluate_bronze_commits(
    context: SensorEvaluationContext, lake: LakeResource, settings: Settings, kafka: KafkaResource | None = None,
    now_ms: int | None = None, follow: list[AssetKey] = (),
) -> SensorResult:
    """`follow`: assets of the same partition that run after Silver in its run (Gold)."""
    now_ms = now_ms or int(time.time() * 1000)
    cursor = CommitCursor.parse(context.cursor)
    if not cursor.last_landed_ms:
        cursor.last_landed_ms = now_ms  # the stall clock starts with the sensor
    fresh: list[tuple[str, str]] = []
    for kind in KINDS:
        fresh += [(n, kind) for n in list_commit_names(lake, kind, cursor.since_ms) if n not in cursor.seen]
    fresh.sort()
    fresh = fresh[:MAX_COMMITS_PER_TICK]
    if not fresh:
        if settings.bronze_mode == "stream" and kafka is not None:
            check_stream_progress(cursor, kafka, settings, now_ms)
        return SensorResult(skip_reason=SkipReason("no new Bronze commits"), cursor=cursor.serialize())

    first, last = date.fromisoformat(settings.first_date), None
    affected: dict[tuple[str, str, str], str] = {}  # (kind, event_date, product) -> newest commit
    events, products, ignored, commits = [], set(), 0, []
    for name, kind in fresh:
        commit = read_commit(lake, kind, name)
        commits.append(commit)
        if commit.writer == "stream":
            events += _stream_materializations(commit)
        for event_date, product, _ in commit.partitions:
            if date.fromisoformat(event_date) < first:
                ignored += 1  # before the partitions begin: its ingest day's Silver quarantines it
                continue
            affected[(kind, event_date, product)] = name
            products.add(product)
        last = name

    instance = context.instance
    new_products = sorted(p for p in products if not instance.has_dynamic_partition(PRODUCTS.name, p))
    # One run per Silver partition: trades and ticker together when both changed, and what follows them
    # (Gold D) in the same run: one process instead of two, and no second sensor hop before Gold.
    by_partition: dict[tuple[str, str], dict[str, str]] = {}
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
        requests.append(RunRequest(
            run_key=f"{names}:{key}:{max(kinds.values())}",
            partition_key=key,
            asset_selection=assets,
            tags={**{f"{ASSET_TAG}/{a.to_user_string()}": "1" for a in assets}, ASSET_TAG: names,
                  "crypto/trigger": "bronze_sensor"},
        ))
    context.log.info(
        f"{len(fresh)} new Bronze commits (last {last}): {len(requests)} Silver runs, "
        f"{len(new_products)} new products, {len(events)} streamed Bronze partitions recorded"
        + (f", {ignored} items before {settings.first_date} left to their ingest day" if ignored else "")
    )
    return SensorResult(
        run_requests=requests,
        cursor=cursor.advance([n for n, _ in fresh], commits).serialize(),
        dynamic_partitions_requests=[PRODUCTS.build_add_request(new_products)] if new_products else [],
        asset_events=events,
    )


def build_bronze_sensor(settings: Settings, silver_assets, gold_asset=None) -> SensorDefinition:
    follow = [gold_asset.key] if gold_asset is not None else []

    @sensor(
        name="bronze_to_silver",
        description=(
            "Reads new Bronze commits (batch or streaming writes, local or S3) and requests the Silver "
            "partitions they touched (late data included), each run carrying Gold of its partition after "
            "Silver's blocking checks; adds new products; records streamed Bronze writes."
        ),
        minimum_interval_seconds=settings.sensor_interval_seconds,
        asset_selection=[*silver_assets, *([gold_asset] if gold_asset is not None else [])],
        default_status=DefaultSensorStatus.RUNNING if settings.automation == "on" else DefaultSensorStatus.STOPPED,
    )
    def bronze_to_silver(context: SensorEvaluationContext, lake: LakeResource, kafka: KafkaResource):
        return evaluate_bronze_commits(context, lake, settings, kafka, follow=follow)

    return bronze_to_silver
