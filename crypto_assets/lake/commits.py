"""The Bronze commit log: one small JSON file per Bronze write, saying what it added.

Both Bronze writers (the batch materialization and the streaming job) append a commit after
their data files are in place. The Bronze sensor reads new commits instead of diffing file
listings: each commit names the Silver partitions (event_date, product_id) that own the
items it added, so the sensor requests exactly those runs. Commits live inside the table
folder (`bronze/<table>/_commits/date=YYYY-MM-DD/<name>.json`), which Spark and the lake's
data-file listing ignore, and work the same on a local disk or S3.

Commit names start with the commit time in milliseconds, so they sort by time.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from crypto_assets.lake.store import LakeStore
from crypto_assets.contracts.names import BRONZE_TABLE

COMMITS_DIR = "_commits"


@dataclass
class BronzeCommit:
    kind: str  # trades | ticker
    writer: str  # batch | stream
    ingest_dates: list[str]
    rows: int
    # Silver partitions owning the added items: [event_date, product_id, items]
    partitions: list[list] = field(default_factory=list)
    offsets: dict[str, list[int]] = field(default_factory=dict)  # kafka partition -> [first, last] added
    batch_id: int | None = None  # streaming micro-batch id
    files: list[str] = field(default_factory=list)
    name: str = ""
    committed_at: str = ""


def commit_from_summary(kind: str, writer: str, summary_rows, **extra) -> BronzeCommit:
    """A commit from the rows of `bronze.summary.write_summary`."""
    owners: dict[tuple[str, str], int] = {}
    offsets: dict[str, list[int]] = {}
    days, rows = set(), 0
    for r in summary_rows:
        days.add(r["ingest_date"].isoformat())
        rows += int(r["records"])
        slot = (r["event_date"].isoformat(), r["product_id"])
        owners[slot] = owners.get(slot, 0) + int(r["items"])
        lo, hi = offsets.get(str(r["kafka_partition"]), [r["lo"], r["hi"]])
        offsets[str(r["kafka_partition"])] = [int(min(lo, r["lo"])), int(max(hi, r["hi"]))]
    return BronzeCommit(
        kind=kind, writer=writer, ingest_dates=sorted(days), rows=rows,
        partitions=[[d, p, n] for (d, p), n in sorted(owners.items())], offsets=offsets, **extra,
    )


def commit_time_ms(name: str) -> int:
    return int(name.split("-", 1)[0])


def commits_path(lake: LakeStore, kind: str) -> str:
    return f"{lake.table_path('bronze', BRONZE_TABLE[kind])}/{COMMITS_DIR}"


def _day_dir(lake: LakeStore, kind: str, day: str) -> str:
    return f"{commits_path(lake, kind)}/date={day}"


def write_commit(lake: LakeStore, commit: BronzeCommit, now: datetime | None = None) -> BronzeCommit:
    """Names, timestamps and writes the commit (atomically); returns it with its name."""
    now = now or datetime.now(timezone.utc)
    ms = int(now.timestamp() * 1000)
    tag = f"b{commit.batch_id}" if commit.batch_id is not None else secrets.token_hex(4)
    commit.name = f"{ms:013d}-{commit.kind}-{commit.writer}-{tag}"
    commit.committed_at = now.isoformat()
    lake.write_text(f"{_day_dir(lake, commit.kind, now.date().isoformat())}/{commit.name}.json",
                    json.dumps(asdict(commit), sort_keys=True))
    return commit


def read_commit(lake: LakeStore, kind: str, name: str) -> BronzeCommit:
    day = datetime.fromtimestamp(commit_time_ms(name) / 1000, tz=timezone.utc).date().isoformat()
    data = json.loads(lake.read_text(f"{_day_dir(lake, kind, day)}/{name}.json"))
    return BronzeCommit(**data)


def list_commit_names(lake: LakeStore, kind: str, since_ms: int = 0) -> list[str]:
    """Names of the commits made at or after `since_ms`, oldest first; only the day folders from
    that day on are listed, so a tick stays cheap however long the log grows."""
    since_day = datetime.fromtimestamp(since_ms / 1000, tz=timezone.utc).date() - timedelta(days=1)
    names = []
    for folder in lake.list_names(commits_path(lake, kind)):
        if not folder.startswith("date=") or folder[5:] < since_day.isoformat():
            continue
        for file in lake.list_names(f"{commits_path(lake, kind)}/{folder}"):
            if file.endswith(".json") and commit_time_ms(file) >= since_ms:
                names.append(file[: -len(".json")])
    return sorted(names)
