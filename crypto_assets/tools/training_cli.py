"""`crypto-pipeline export-training`: a reproducible training set from Gold (`crypto_assets.ml.export`).

    crypto-pipeline export-training --from 2026-11-24 --to 2026-11-25 --output train_set
    crypto-pipeline export-training --manifest train_set/manifest.json --output again   # the same bytes

The training-ready Gold rows of the days (and `--products`) as of one Gold snapshot (`--as-of` a snapshot
id or a time; default the current one), one Parquet file per day and product, and `manifest.json`.
With `--manifest`, the export a manifest describes is made again from its snapshot and compared file by
file with the manifest's checksums.
"""

from __future__ import annotations

import sys
from datetime import date

from crypto_assets.contracts.settings import Settings


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{flag} {text!r} is not a day; expected YYYY-MM-DD") from None


def cmd_export_training(args, settings: Settings) -> int:
    from crypto_assets.lake.catalog import CatalogConfig
    from crypto_assets.ml.export import TrainingDataError, export_training, reproduce

    config = CatalogConfig.from_settings(settings)
    try:
        if args.manifest:
            if args.start or args.end or args.products or args.as_of:
                raise ValueError("--manifest takes the days, products and snapshot from the manifest: leave out "
                                 "--from, --to, --products and --as-of")
            manifest, differ = reproduce(config, args.manifest, args.output)
            if differ:
                print(f"error: the export of snapshot {manifest['gold_snapshot_ids']} differs from {args.manifest} in "
                      f"{len(differ)} file(s) ({', '.join(differ[:3])}): the data files were changed or expired; "
                      f"see `crypto-pipeline lake history gold.features`", file=sys.stderr)
                return 1
        else:
            if not args.start or not args.end:
                raise ValueError("give --from and --to (YYYY-MM-DD), or --manifest FILE to repeat an export")
            products = [p.strip() for p in args.products.split(",") if p.strip()] if args.products else None
            manifest = export_training(config, _day(args.start, "--from"), _day(args.end, "--to"), products,
                                       args.as_of, args.output)
    except (ValueError, TrainingDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {manifest['total_rows']} training-ready rows of {manifest['from']}..{manifest['to']} "
          f"({', '.join(manifest['products'])}) from {manifest['gold_table']} @ snapshot "
          f"{manifest['gold_snapshot_ids'][manifest['gold_table']]}, feature catalog "
          f"{manifest['feature_catalog_version']}, to {args.output}"
          + (" (identical to the manifest's files)" if args.manifest else ""))
    print(f"reproduce with: {manifest['command']}")
    return 0


def add_parser(sub) -> None:
    e = sub.add_parser("export-training", help="write training-ready Gold rows of some days to Parquet with a manifest "
                                               "(one pinned Gold snapshot; reproducible byte for byte)")
    e.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day")
    e.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day")
    e.add_argument("--products", help="comma-separated product ids (default: every product Gold holds in those days)")
    e.add_argument("--as-of", help="read Gold as of a snapshot id or a time, e.g. 2026-12-01T12:00:00Z (default: now)")
    e.add_argument("--manifest", metavar="FILE", help="repeat the export a manifest.json describes (its snapshot, "
                                                      "days and products) and check the bytes are the same")
    e.add_argument("--output", required=True, metavar="DIR", help="folder for the Parquet files and manifest.json")
    e.set_defaults(func=cmd_export_training)
