"""Forecast reports: self-contained HTML, Markdown with a PNG beside it, or JSON.

The same forecast always gives the same bytes: matplotlib runs on the Agg
backend with a fixed SVG hash salt and no date or software metadata, so a cron
job that publishes the report only shows a diff when the forecast changed.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from nodus_cli.errors import UsageError
from nodus_cli.forecast.model import ForecastResult
from nodus_cli.fsutil import atomic_write
from nodus_cli.jsonvalues import jsonable

SUFFIXES = (".html", ".md", ".json")
CREATOR = "nodus"


def _chart(result: ForecastResult, fmt: str) -> bytes:
    """History, forecast, 95% interval, threshold and recent anomalies in one chart."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    with matplotlib.rc_context(
        {"svg.hashsalt": CREATOR, "svg.fonttype": "path", "font.family": "DejaVu Sans"}
    ):
        figure, created_axes = plt.subplots(figsize=(10, 4.2), dpi=100)
        axes: Any = created_axes  # matplotlib's stubs do not take datetimes
        try:
            axes.plot(
                result.history_times,
                result.history_values,
                color="#1f77b4",
                linewidth=1.2,
                label="history",
            )
            axes.fill_between(
                result.times,
                result.lower,
                result.upper,
                color="#ff7f0e",
                alpha=0.2,
                linewidth=0,
                label="95% interval",
            )
            axes.plot(
                result.times,
                result.mean,
                color="#ff7f0e",
                linewidth=1.5,
                label=f"forecast ({result.model})",
            )
            if result.threshold is not None:
                axes.axhline(
                    result.threshold,
                    color="#d62728",
                    linestyle="--",
                    linewidth=1,
                    label=f"threshold {result.threshold:g}",
                )
            if result.anomalies:
                axes.scatter(
                    [t for t, _ in result.anomalies],
                    [v for _, v in result.anomalies],
                    color="#d62728",
                    marker="o",
                    s=28,
                    zorder=3,
                    label="anomalies",
                )
            if result.crossing is not None:
                axes.axvline(result.crossing.expected, color="#d62728", linewidth=0.8, alpha=0.6)
            axes.set_title(result.series)
            axes.grid(alpha=0.3)
            axes.legend(loc="upper left", fontsize=8)
            figure.autofmt_xdate()
            figure.tight_layout()
            buffer = io.BytesIO()
            metadata: dict[str, Any] = (
                {"Date": None, "Creator": CREATOR} if fmt == "svg" else {"Software": CREATOR}
            )
            figure.savefig(buffer, format=fmt, metadata=metadata)
        finally:
            plt.close(figure)
    return buffer.getvalue()


def _table_rows(result: ForecastResult) -> list[tuple[str, str, str, str]]:
    return [
        (row["time"].isoformat(), f"{row['forecast']:g}", f"{row['lower']:g}", f"{row['upper']:g}")
        for row in result.rows()
    ]


def render_html(result: ForecastResult) -> bytes:
    svg = _chart(result, "svg").decode()
    svg = svg[svg.index("<svg") :]  # drop the XML prologue and doctype inside HTML
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in _table_rows(result)
    )
    title = html.escape(f"Forecast: {result.series}")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
svg {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p><strong>{html.escape(result.summary())}</strong></p>
<p>Model: {html.escape(result.model)}; season: {result.season_points} points;
step: {result.step_seconds:g} s; interval: 95%.</p>
{svg}
<h2>Forecast</h2>
<table>
<tr><th>time</th><th>forecast</th><th>lower</th><th>upper</th></tr>
{rows}
</table>
</body>
</html>
"""
    return page.encode()


def render_markdown(result: ForecastResult, image_name: str) -> bytes:
    lines = [
        f"# Forecast: {result.series}",
        "",
        f"**{result.summary()}**",
        "",
        f"Model: {result.model}; season: {result.season_points} points; "
        f"step: {result.step_seconds:g} s; interval: 95%.",
        "",
        f"![forecast of {result.series}]({image_name})",
        "",
        "| time | forecast | lower | upper |",
        "|---|---:|---:|---:|",
        *(f"| {' | '.join(row)} |" for row in _table_rows(result)),
        "",
    ]
    return "\n".join(lines).encode()


def render_json(result: ForecastResult) -> bytes:
    document = jsonable(result.document())
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def write_report(result: ForecastResult, path: Path) -> list[Path]:
    """Write the report chosen by the file suffix; returns every file written."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"--report must end in {', '.join(SUFFIXES)}; got {path.name}")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent}: no such directory")
    if suffix == ".html":
        atomic_write(path, render_html(result))
        return [path]
    if suffix == ".json":
        atomic_write(path, render_json(result))
        return [path]
    image = path.with_suffix(".png")
    atomic_write(image, _chart(result, "png"))
    atomic_write(path, render_markdown(result, image.name))
    return [path, image]
