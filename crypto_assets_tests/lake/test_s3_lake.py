"""The lake's file operations and Spark's s3a:// paths against moto's S3 server."""

from __future__ import annotations

import pyarrow as pa
import pytest

from crypto_assets.lake.store import Lake, LakeUnavailableError
from crypto_assets.orchestration.resources.lake import LakeResource


def test_paths_for_local_and_s3_roots(tmp_path):
    local = LakeResource(root=str(tmp_path))
    assert local.partition_path("silver", "trades", product_id="BTC-USD", event_date="2026-01-02") == str(
        tmp_path / "silver" / "trades" / "product_id=BTC-USD" / "event_date=2026-01-02")
    for root in ("s3://b/pre", "s3a://b/pre/", "s3://b/pre/"):
        s3 = LakeResource(root=root)
        assert s3.table_path("gold", "features") == "s3a://b/pre/gold/features"
        assert s3.partition_path("gold", "features", product_id="X", event_date="D") == (
            "s3a://b/pre/gold/features/product_id=X/event_date=D")
    assert LakeResource(root="s3://b").table_path("bronze", "kafka_trades") == "s3a://b/bronze/kafka_trades"


def test_file_operations_on_s3(s3_settings):
    lake = LakeResource.from_settings(s3_settings)
    lake.check()
    part = lake.partition_path("gold", "features", product_id="BTC-USD", event_date="2026-01-02")
    assert not lake.exists(part) and lake.data_files(part) == [] and lake.read_table(part) is None
    lake.delete(part)  # deleting nothing is fine
    lake.replace_partition(pa.table({"a": [1, 2, 3]}), part)
    files = lake.data_files(part)
    assert len(files) == 1 and files[0][0].startswith(part + "/part-") and files[0][1] > 0
    assert lake.exists(part)
    lake.replace_partition(pa.table({"a": [7]}), part)  # replaces, never accumulates
    assert len(lake.data_files(part)) == 1 and lake.read_table(part).column("a").to_pylist() == [7]
    assert lake.partitions("gold", "features") == [{"product_id": "BTC-USD", "event_date": "2026-01-02"}]
    lake.delete(part)
    assert not lake.exists(part) and lake.data_files(part) == []


def test_spark_reads_and_writes_s3a_paths(s3_settings, s3_spark):
    lake = Lake.from_settings(s3_settings)
    path = lake.table_path("silver", "demo")
    df = s3_spark.createDataFrame([("BTC-USD", "2026-01-02", 1), ("ETH-USD", "2026-01-02", 2)], "product_id string, d string, v int")
    df.write.mode("overwrite").partitionBy("product_id", "d").parquet(path)
    assert sorted(r.v for r in s3_spark.read.parquet(path).collect()) == [1, 2]
    assert lake.partitions("silver", "demo") == [{"product_id": "BTC-USD", "d": "2026-01-02"},
                                                 {"product_id": "ETH-USD", "d": "2026-01-02"}]
    assert lake.read_table(lake.partition_path("silver", "demo", product_id="ETH-USD", d="2026-01-02")).num_rows == 1


def test_missing_bucket_and_missing_credentials_are_one_line(moto_endpoint, monkeypatch):
    lake = Lake("s3://no-such-bucket-here/lake", moto_endpoint)
    with pytest.raises(LakeUnavailableError, match="S3 bucket 'no-such-bucket-here' of the lake root .* does not exist"):
        lake.check()
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(LakeUnavailableError, match="no AWS credentials found"):
        lake.check()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_small_file_operations_on_both_kinds_of_lake(where, tmp_path, request):
    if where == "s3":
        lake = LakeResource.from_settings(request.getfixturevalue("s3_settings"))
        base = lake.table_path("_state", "commits")
    else:
        lake = LakeResource(root=str(tmp_path))
        base = lake.table_path("_state", "commits")
    assert lake.list_names(base) == []
    lake.write_text(f"{base}/b.json", '{"n": 2}')
    lake.write_text(f"{base}/a.json", '{"n": 1}')
    lake.write_text(f"{base}/a.json", '{"n": 3}')  # replaced
    assert lake.list_names(base) == ["a.json", "b.json"]
    assert lake.read_text(f"{base}/a.json") == '{"n": 3}'
    lake.move(f"{base}/b.json", f"{base}/c.json")
    assert lake.list_names(base) == ["a.json", "c.json"] and lake.read_text(f"{base}/c.json") == '{"n": 2}'
    lake.delete_file(f"{base}/a.json")
    lake.delete_file(f"{base}/a.json")  # already gone: fine
    assert lake.list_names(base) == ["c.json"]
    with pytest.raises(FileNotFoundError):
        lake.read_text(f"{base}/a.json")
