"""``nodus export``: store tables to hive-partitioned Parquet for DuckDB or Spark."""

from pathlib import Path
from typing import Annotated

import typer

from nodus_cli.cli import state
from nodus_cli.cli.options import JsonOption
from nodus_cli.cli.output import emit_json, say
from nodus_cli.cli.progressbar import progress


def export(
    tables: Annotated[list[str], typer.Argument(help="Tables of the store to export.")],
    to: Annotated[
        Path,
        typer.Option(
            "--to", metavar="DIR", help="Export directory; each table goes to DIR/TABLE/."
        ),
    ],
    partition_by: Annotated[
        str | None,
        typer.Option(
            "--partition-by",
            metavar="KEYS",
            help="Comma-separated hive partition keys: columns, or day(COL), month(COL), "
            "year(COL), hour(COL); 'none' for none (default for logs and metrics: "
            "day(time),source; kept from the last export otherwise).",
            show_default=False,
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rewrite the export from scratch instead of appending.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write tables as hive-partitioned Parquet, incrementally (see nodus-export(5)).

    Examples:

      nodus export logs metrics --to lake       # only rows added since the last export
      nodus export logs --to lake --full        # rewrite from scratch
    """
    from nodus_cli.scaleout.export import export_tables

    with (
        state.open_store() as store,
        progress("exporting", unit="steps", items_unit="tables") as meter,
    ):
        results = export_tables(
            store, tables, to, partition_by=partition_by, full=full, on_progress=meter
        )
    if as_json:
        emit_json({"to": str(to.absolute()), "tables": [r.to_json() for r in results]})
        return
    for r in results:
        tracked = f"tracked by {r.tracking}"
        if r.mode == "unchanged":
            say(f"{r.table}: no new rows ({r.total_rows:,} exported, {tracked}) in {r.target}")
        else:
            say(
                f"{r.table}: wrote {r.rows:,} rows in {len(r.files)} files "
                f"({r.mode}, {r.total_rows:,} exported, {tracked}) to {r.target}"
            )


def register(app: typer.Typer) -> None:
    app.command()(export)
