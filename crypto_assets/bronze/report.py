"""What a Bronze day reports (Bronze declares no checks), naming the Iceberg snapshot it produced."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crypto_assets.contracts.reporting import Metadata

if TYPE_CHECKING:
    from crypto_assets.bronze.build import BronzeDayStats


def bronze_report(stats: BronzeDayStats) -> Metadata:
    """The metadata of a Bronze day (Bronze declares no checks)."""
    return {
        "rows": ("int", stats.rows),
        "malformed_records": ("int", stats.malformed),
        "malformed_by_reason": ("json", stats.malformed_by_reason),
        "kafka_offsets": ("json", {str(p): {"first": lo, "last": hi} for p, (lo, hi) in stats.offsets.items()}),
        "products": ("json", stats.products),
        "files": ("int", stats.files),
        "bytes_written": ("int", stats.bytes_written),
        "table": ("text", stats.table),
        "path": ("path", stats.path),
        "kafka_records_scanned": ("int", stats.kafka_window_records),
        "rows_added": ("int", stats.new_rows),
        "snapshot_id": ("text", str(stats.snapshot_id) if stats.snapshot_id is not None else ""),
        "writer": ("text", "batch"),
    }
