"""Glue Data Catalog tables of the lake (what Athena reads) and partition registration.

Columns are the Parquet schemas the steps write (a test compares them with the written files);
partition columns are the Hive-style folders. Partitions are registered after each Silver and
Gold materialization (`register_partitions`, idempotent) rather than by partition projection,
because `product_id` is an open set that projection could only handle as `injected`, which
makes every Athena query name a product.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto_assets.lake.store import to_s3

_KAFKA = [
    ("topic", "string"), ("partition", "int"), ("offset", "bigint"), ("kafka_timestamp", "timestamp"),
    ("key", "string"), ("value", "binary"), ("source", "string"), ("connection_id", "string"),
    ("headers", "array<struct<key:string,value:string>>"), ("channel", "string"), ("envelope_timestamp", "string"),
    ("sequence_num", "bigint"), ("event_type", "string"), ("product_id", "string"),
]
_TRADE_ITEM = "array<struct<trade_id:string,product_id:string,price:string,size:string,side:string,time:string>>"
_TICKER_ITEM = (
    "array<struct<type:string,product_id:string,price:string,volume_24_h:string,low_24_h:string,high_24_h:string,"
    "low_52_w:string,high_52_w:string,price_percent_chg_24_h:string,best_bid:string,best_bid_quantity:string,"
    "best_ask:string,best_ask_quantity:string>>"
)
_MALFORMED = [("is_malformed", "boolean"), ("malformed_reason", "string")]
_LINEAGE = [
    ("kafka_topic", "string"), ("kafka_partition", "int"), ("kafka_offset", "bigint"), ("item_index", "int"),
    ("ingest_time", "timestamp"), ("ingest_date", "date"), ("source", "string"), ("connection_id", "string"),
    ("sequence_num", "bigint"), ("event_type", "string"), ("is_snapshot", "boolean"),
]
_TICKER_VALUES = [(c, "double") for c in (
    "price", "volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w", "price_percent_chg_24_h",
    "best_bid", "best_bid_quantity", "best_ask", "best_ask_quantity")]
_QUARANTINE = [("reason", "string"), ("detail", "string"), ("item_json", "string"), ("value", "binary"),
               ("event_time_raw", "string"), *_LINEAGE]
_EVENT_PARTS = [("product_id", "string"), ("event_date", "date")]


@dataclass(frozen=True)
class CatalogTable:
    name: str  # table name in the Glue database
    layer: str
    table: str  # folder below the layer
    columns: list[tuple[str, str]]
    partition_keys: list[tuple[str, str]]
    description: str

    def location(self, lake) -> str:
        return to_s3(lake.table_path(self.layer, self.table)) + "/"


def catalog_tables() -> list[CatalogTable]:
    from crypto_assets.contracts.gold_features import gold_columns

    gold = [(n, t) for n, t in gold_columns() if n not in ("product_id", "event_date")]
    return [
        CatalogTable("bronze_kafka_trades", "bronze", "kafka_trades", [*_KAFKA, ("trades", _TRADE_ITEM), *_MALFORMED],
                     [("ingest_date", "date")], "Bronze: one row per Kafka record of crypto.trades.raw, per ingest date"),
        CatalogTable("bronze_kafka_ticker", "bronze", "kafka_ticker", [*_KAFKA, ("tickers", _TICKER_ITEM), *_MALFORMED],
                     [("ingest_date", "date")], "Bronze: one row per Kafka record of crypto.ticker.raw, per ingest date"),
        CatalogTable("silver_trades", "silver", "trades",
                     [("trade_id", "bigint"), ("trade_time", "timestamp"), ("price", "double"), ("size", "double"),
                      ("side", "string"), ("notional", "double"), *_LINEAGE],
                     _EVENT_PARTS, "Silver: typed, validated, deduplicated trades"),
        CatalogTable("silver_ticker", "silver", "ticker",
                     [("event_time", "timestamp"), *_TICKER_VALUES, ("content_hash", "string"), *_LINEAGE],
                     _EVENT_PARTS, "Silver: typed, validated, deduplicated ticker"),
        CatalogTable("quarantine_trades", "quarantine", "trades", _QUARANTINE, _EVENT_PARTS,
                     "Trades items Silver rejected, with the reason"),
        CatalogTable("quarantine_ticker", "quarantine", "ticker", _QUARANTINE, _EVENT_PARTS,
                     "Ticker items Silver rejected, with the reason"),
        CatalogTable("gold_features", "gold", "features", gold, _EVENT_PARTS,
                     "Gold: one row per trade with the 120 features and 6 targets of docs/feature_catalog.md"),
    ]


def table_for(layer: str, table: str) -> CatalogTable:
    return next(t for t in catalog_tables() if (t.layer, t.table) == (layer, table))


PARQUET_STORAGE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                  "Parameters": {"serialization.format": "1"}},
    "Compressed": True,
}


def table_input(t: CatalogTable, lake, made_by: str) -> dict:
    return {
        "Name": t.name,
        "Description": t.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "parquet.compression": "SNAPPY", "EXTERNAL": "TRUE",
                       "created_by": made_by},
        "PartitionKeys": [{"Name": n, "Type": typ} for n, typ in t.partition_keys],
        "StorageDescriptor": {
            **PARQUET_STORAGE,
            "Columns": [{"Name": n, "Type": typ} for n, typ in t.columns],
            "Location": t.location(lake),
        },
    }


def register_partitions(glue_client, database: str, t: CatalogTable, lake, values: list[dict[str, str]]) -> int:
    """Adds the partitions (dicts of partition column -> value) that are not yet in the catalog; idempotent.

    Returns how many were added. Each partition points at its folder, with the table's storage format."""
    added = 0
    for start in range(0, len(values), 100):  # BatchCreatePartition takes at most 100
        chunk = values[start:start + 100]
        inputs = []
        for v in chunk:
            ordered = [v[n] for n, _ in t.partition_keys]
            location = to_s3(lake.partition_path(t.layer, t.table, **{n: v[n] for n, _ in t.partition_keys})) + "/"
            inputs.append({
                "Values": ordered,
                "StorageDescriptor": {**PARQUET_STORAGE, "Columns": [{"Name": n, "Type": typ} for n, typ in t.columns],
                                      "Location": location},
            })
        response = glue_client.batch_create_partition(DatabaseName=database, TableName=t.name,
                                                      PartitionInputList=inputs)
        errors = [e for e in response.get("Errors", []) if e["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException"]
        if errors:
            e = errors[0]
            raise RuntimeError(f"Glue catalog refused partition {e['PartitionValues']} of {database}.{t.name}: "
                               f"{e['ErrorDetail']['ErrorCode']}: {e['ErrorDetail'].get('ErrorMessage', '')}")
        added += len(chunk) - len(response.get("Errors", []))
    return added


def catalog_partitions(glue_client, database: str, t: CatalogTable) -> list[dict[str, str]]:
    """The table's registered partitions as dicts (tests compare them with the folders in S3)."""
    out = []
    for page in glue_client.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=t.name):
        for p in page["Partitions"]:
            out.append(dict(zip([n for n, _ in t.partition_keys], p["Values"])))
    return sorted(out, key=lambda d: tuple(d.values()))
