"""`crypto-pipeline lake ...`: the tables, their history, time travel, maintenance and migration."""

from __future__ import annotations

from crypto_assets.contracts.settings import Settings


def _config(settings: Settings):
    from crypto_assets.lake.catalog import CatalogConfig

    return CatalogConfig.from_settings(settings)


def _tables(args, settings: Settings) -> int:
    from crypto_assets.contracts.tables import TABLES
    from crypto_assets.lake.catalog import load_table

    config = _config(settings)
    print(f"{'table':<22} {'partitioned by':<24} {'snapshots':>9} {'rows':>12} {'files':>7}  current snapshot")
    for t in TABLES.values():
        table = load_table(config, t)
        snap = table.current_snapshot()
        props = snap.summary.additional_properties if snap and snap.summary else {}
        print(f"{t.identifier:<22} {', '.join(t.partition_by):<24} {len(table.snapshots()):>9} "
              f"{props.get('total-records', '0'):>12} {props.get('total-data-files', '0'):>7}  "
              f"{snap.snapshot_id if snap else '-'}")
    return 0


def _history(args, settings: Settings) -> int:
    from crypto_assets.lake.time_travel import history

    entries = history(_config(settings), args.table)
    for e in entries[-args.limit:]:
        p = e.provenance
        who = f"{p.asset} {p.partition} run {p.run_id or '-'}" if p else "(not written by this project)"
        print(f"{e.snapshot_id:>20}  {e.committed_at:%Y-%m-%d %H:%M:%S}  {e.operation:<9} +{e.added_records:<9} "
              f"-{e.deleted_records:<9} {who}")
    return 0


def _where(items: list[str]) -> dict:
    where = {}
    for item in items or []:
        column, sep, value = item.partition("=")
        if not sep:
            from crypto_assets.lake.catalog import CatalogError

            raise CatalogError(f"--where {item!r}: expected COLUMN=VALUE, e.g. product_id=BTC-USD")
        where.setdefault(column, []).append(value)
    return where


def _read(args, settings: Settings) -> int:
    from crypto_assets.lake.time_travel import read_as_of

    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    rows = read_as_of(_config(settings), args.table, as_of=args.as_of, where=_where(args.where), columns=columns)
    if args.output:
        import pyarrow.parquet as pq

        pq.write_table(rows, args.output)
        print(f"{rows.num_rows} rows written to {args.output}")
        return 0
    frame = rows.slice(0, args.limit).to_pandas()
    import pandas as pd

    with pd.option_context("display.max_columns", 12, "display.width", 160):
        print(frame.to_string(index=False) if len(frame) else "(no rows)")
    if rows.num_rows > args.limit:
        print(f"... {rows.num_rows - args.limit} more rows (--limit, or --output FILE.parquet for all)")
    return 0


def _maintain(args, settings: Settings) -> int:
    from crypto_assets.contracts.tables import TABLES
    from crypto_assets.lake.maintenance import maintain_table
    from crypto_assets.lake.spark import build_spark_session
    from crypto_assets.lake.time_travel import table_def

    tables = [table_def(n) for n in args.tables] if args.tables else list(TABLES.values())
    spark = build_spark_session(master=settings.spark_master, connect_url=settings.spark_connect_url,
                                shuffle_partitions=settings.spark_shuffle_partitions,
                                driver_memory=settings.spark_driver_memory, state_dir=settings.state_dir,
                                jvm_dir=settings.jvm_dir, s3_endpoint_url=settings.s3_endpoint_url,
                                aws_region=settings.aws_region)
    retention = settings.snapshot_retention_hours if args.retention_hours is None else args.retention_hours
    for t in tables:
        s = maintain_table(spark, _config(settings), t, retention, max_snapshots=settings.snapshot_retention_count)
        print(f"{t.identifier:<22} {s.rewritten_files:>5} files -> {s.added_files:<4} {s.expired_snapshots:>6} snapshots "
              f"expired ({s.snapshots_after} kept)  {s.orphan_files} orphans  {s.seconds} s")
    return 0


def _migrate(args, settings: Settings) -> int:
    from crypto_assets.lake.migrate import migrate

    report = migrate(_config(settings), delete_old=not args.keep_old)
    for name in report.registered:
        print(f"{name}: registered again from its metadata")
    for name, rows in report.tables.items():
        print(f"{name:<22} {rows:>12} rows adopted")
    print(f"{report.partitions} partitions adopted into Iceberg tables"
          + (f"; {report.skipped_files} superseded streamed files skipped" if report.skipped_files else ""))
    return 0


def add_parser(sub) -> None:
    lake = sub.add_parser("lake", help="the lake's Iceberg tables: list, history, time travel, maintenance, migration")
    actions = lake.add_subparsers(dest="lake_action", required=True)

    actions.add_parser("tables", help="every table with its partitioning, snapshots, rows and files").set_defaults(
        func=_tables)

    h = actions.add_parser("history", help="a table's snapshots and what wrote each (asset, partition, run)")
    h.add_argument("table", help="e.g. silver.trades or silver_trades")
    h.add_argument("--limit", type=int, default=30, help="newest N snapshots")
    h.set_defaults(func=_history)

    r = actions.add_parser("read", help="a table's rows, now or as of a snapshot id or a time")
    r.add_argument("table", help="e.g. gold.features or gold_features")
    r.add_argument("--as-of", help="a snapshot id (from `lake history`) or a time, e.g. 2026-12-01T12:00:00Z")
    r.add_argument("--where", action="append", metavar="COLUMN=VALUE",
                   help="partition filter, repeatable (e.g. --where product_id=BTC-USD --where event_date=2026-12-01)")
    r.add_argument("--columns", help="comma-separated columns (default: all)")
    r.add_argument("--limit", type=int, default=20, help="rows printed")
    r.add_argument("--output", metavar="FILE.parquet", help="write every row to a Parquet file instead")
    r.set_defaults(func=_read)

    m = actions.add_parser("maintain", help="compact small files, expire old snapshots, remove orphan files (Spark)")
    m.add_argument("tables", nargs="*", help="tables (default: all)")
    m.add_argument("--retention-hours", type=int, help="keep snapshots this recent (default CRYPTO_SNAPSHOT_RETENTION_HOURS)")
    m.set_defaults(func=_maintain)

    g = actions.add_parser("migrate", help="adopt a lake of the earlier plain-Parquet version into the Iceberg tables")
    g.add_argument("--keep-old", action="store_true", help="keep the old Parquet folders after adopting them")
    g.set_defaults(func=_migrate)
