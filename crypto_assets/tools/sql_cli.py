"""`crypto-pipeline sql ["SELECT ..."]`: SQL over the lake's tables (`crypto_assets.lake.sql`).

With a query: runs it and prints the result (`--format table|csv|json|parquet`, `--output FILE`). Without one:
an interactive shell on one connection (statements end with `;`, `.tables` lists the tables, `.quit` or
end of input leaves). Every table a query names is read as one snapshot: the current one, or `--as-of`.
"""

from __future__ import annotations

import sys

from crypto_assets.contracts.settings import Settings

FORMATS = ("table", "csv", "json", "parquet")
MAX_TABLE_ROWS = 40  # rows `--format table` prints (the count of the rest is said)


def _write(result, fmt: str, output: str | None, out=None) -> None:
    """Writes an Arrow result in the format asked for, to `output` or standard output."""
    import pyarrow.csv as csv
    import pyarrow.parquet as pq

    out = out or sys.stdout
    if fmt == "parquet":
        pq.write_table(result, output)
    elif fmt == "csv":
        if output:
            csv.write_csv(result, output)
        else:
            out.flush()
            csv.write_csv(result, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    elif fmt == "json":
        import json

        lines = "".join(json.dumps(row, default=str) + "\n" for row in result.to_pylist())
        if output:
            with open(output, "w") as f:
                f.write(lines)
        else:
            out.write(lines)
    else:
        text = _table_text(result)
        if output:
            with open(output, "w") as f:
                f.write(text)
        else:
            out.write(text)


def _table_text(result) -> str:
    """Aligned columns, the first MAX_TABLE_ROWS rows, and how many there were."""
    names = result.column_names
    rows = result.slice(0, MAX_TABLE_ROWS).to_pylist()
    cells = [[str(r[n]) if r[n] is not None else "NULL" for n in names] for r in rows]
    widths = [max([len(n)] + [len(c[i]) for c in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    more = result.num_rows - len(rows)
    lines.append(f"({result.num_rows} row{'s' if result.num_rows != 1 else ''}"
                 f"{f', {more} not shown: --format csv or --output for all' if more else ''})")
    return "\n".join(lines) + "\n"


def _empty_lake_line(settings: Settings) -> str:
    return (f"the tables this query reads hold no data yet (lake {settings.lake_root}): run `make demo` to fill "
            f"the lake, or materialize Bronze, Silver and Gold")


def run_query(sql, text: str, settings: Settings, fmt: str, output: str | None) -> int:
    from crypto_assets.lake.sql import SqlError

    try:
        result = sql.arrow(text)
    except SqlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if sql.empty():
        print(_empty_lake_line(settings), file=sys.stderr)
    _write(result, fmt, output)
    return 0


def shell(sql, settings: Settings, fmt: str) -> int:
    """Statements from standard input, each ended by `;`, on one connection."""
    from crypto_assets.lake.sql import table_names

    interactive = sys.stdin.isatty()
    if interactive:
        print("SQL on the lake (DuckDB); end statements with ';', .tables lists the tables, .quit leaves")
    pending: list[str] = []
    status = 0
    while True:
        if interactive:
            print("lake> " if not pending else "  ... ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        stripped = line.strip()
        if not pending and stripped in (".quit", ".exit"):
            break
        if not pending and stripped == ".tables":
            print("\n".join(table_names()))
            continue
        pending.append(line)
        if stripped.endswith(";"):
            status = max(status, run_query(sql, "".join(pending), settings, fmt, None))
            pending.clear()
    if "".join(pending).strip():
        status = max(status, run_query(sql, "".join(pending), settings, fmt, None))
    return status


def cmd_sql(args, settings: Settings) -> int:
    from crypto_assets.lake.catalog import CatalogConfig
    from crypto_assets.lake.sql import LakeSql

    if args.format == "parquet" and not args.output:
        print("error: --format parquet needs --output FILE.parquet", file=sys.stderr)
        return 2
    sql = LakeSql(CatalogConfig.from_settings(settings), as_of=args.as_of)
    if args.query:
        return run_query(sql, args.query, settings, args.format, args.output)
    return shell(sql, settings, args.format)


def add_parser(sub) -> None:
    q = sub.add_parser("sql", help="SQL over the lake's tables (DuckDB; each table read as one snapshot)")
    q.add_argument("query", nargs="?", help="the query (without one: an interactive shell reading standard input)")
    q.add_argument("--as-of", help="read every table as of a snapshot id or a time, e.g. 2026-12-01T12:00:00Z")
    q.add_argument("--format", choices=FORMATS, default="table", help="how the result is printed or written")
    q.add_argument("--output", metavar="FILE", help="write the result to a file instead of standard output")
    q.set_defaults(func=cmd_sql)
