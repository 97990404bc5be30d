"""The lake's first Bronze day (where the daily partitions begin), read from the Bronze tables' partitions."""

from __future__ import annotations

import logging
from datetime import date

import pyarrow as pa

from crypto_assets.contracts.settings import Settings
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake.snapshots import Provenance, append
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.partitions import lake_first_day


def _land(settings, kind: str, day: str) -> None:
    t = bronze_table(kind)
    row = {"topic": "x", "partition": 0, "offset": 1, "ingest_date": date.fromisoformat(day)}
    append(Lake.from_settings(settings).catalog_config, t, pa.Table.from_pylist([row], schema=t.schema),
           Provenance(f"bronze_{kind}", day, "test"))


def test_first_day_is_the_earliest_bronze_partition_and_none_for_an_empty_lake(tmp_path):
    settings = Settings.from_env(environ={}, lake_root=str(tmp_path / "lake"))
    assert lake_first_day(settings) is None
    assert not (tmp_path / "lake" / "catalog.db").exists()  # looking created no catalog
    _land(settings, "trades", "2026-11-22")
    assert lake_first_day(settings) == "2026-11-22"
    _land(settings, "ticker", "2026-11-20")
    assert lake_first_day(settings) == "2026-11-20"


def test_an_unreadable_catalog_gives_a_warning_and_no_day(tmp_path, caplog):
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "catalog.db").write_bytes(b"this is not a database at all" * 100)
    settings = Settings.from_env(environ={}, lake_root=str(tmp_path / "lake"))
    with caplog.at_level(logging.WARNING):
        assert lake_first_day(settings) is None
    assert "partitions start today" in caplog.text and "Traceback" not in caplog.text
