"""`crypto-pipeline stream`: the streaming Bronze job, both tables in one Spark session.

Runs until stopped (Ctrl-C / SIGTERM stop it between micro-batches), or with `once` lands
what Kafka holds and exits (catch-up, tests). Restart-safe through the checkpoints under
`stream_checkpoint_root`; the Bronze sensor turns its Iceberg commits into Dagster materializations.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from crypto_assets.contracts.settings import Settings

log = logging.getLogger(__name__)


class StreamError(RuntimeError):
    """The stream cannot start or has failed; the message says why and what to do."""


@dataclass
class StreamReport:
    batches: dict[str, int]
    rows: dict[str, int]

    def __str__(self) -> str:
        return "; ".join(f"bronze {k}: {self.batches[k]} micro-batches, {self.rows[k]} rows" for k in self.batches)


def checkpoint_path(settings: Settings, kind: str) -> str:
    return f"{settings.checkpoint_root}/bronze_{kind}"


def run_stream(
    settings: Settings, kinds: tuple[str, ...], once: bool = False, stop: threading.Event | None = None,
    spark=None, poll_s: float = 1.0,
) -> StreamReport:
    from crypto_assets.bronze.stream import start_bronze_stream
    from crypto_assets.contracts.partitioning import SilverRules
    from crypto_assets.orchestration.resources.kafka import KafkaResource
    from crypto_assets.orchestration.resources.lake import LakeResource
    from crypto_assets.orchestration.resources.spark import SparkResource

    kafka = KafkaResource.from_settings(settings)
    kafka.require_topics([kafka.topic_for(k) for k in kinds])  # one clear line if the broker or a topic is missing
    lake = LakeResource.from_settings(settings)
    spark = spark or SparkResource.from_settings(settings).get_session()
    rules = SilverRules.from_settings(settings)
    stop = stop or threading.Event()
    queries = {
        kind: start_bronze_stream(
            spark, kafka, lake, kind, checkpoint_path(settings, kind), rules,
            trigger_seconds=settings.stream_trigger_seconds, available_now=once,
            max_offsets_per_trigger=settings.stream_max_offsets_per_trigger,
        )
        for kind in kinds
    }
    log.info("streaming Bronze %s (trigger %ss, checkpoints under %s)", ", ".join(kinds),
             settings.stream_trigger_seconds, settings.checkpoint_root)
    report = StreamReport(batches={k: 0 for k in kinds}, rows={k: 0 for k in kinds})
    seen: dict[str, set] = {k: set() for k in kinds}
    try:
        while True:
            for kind, q in queries.items():
                for p in q.recentProgress:
                    if p["batchId"] not in seen[kind] and p.get("numInputRows", 0):
                        seen[kind].add(p["batchId"])
                        report.batches[kind] += 1
                        report.rows[kind] += int(p["numInputRows"])
                if q.exception() is not None:
                    raise StreamError(
                        f"the Bronze {kind} stream failed: {str(q.exception()).splitlines()[0]}; fix the cause and "
                        f"start `crypto-pipeline stream` again: it resumes from {checkpoint_path(settings, kind)}"
                    )
            if stop.is_set() or (once and not any(q.isActive for q in queries.values())):
                break
            stop.wait(poll_s)
    finally:
        for q in queries.values():
            if q.isActive:
                q.stop()
    return report
