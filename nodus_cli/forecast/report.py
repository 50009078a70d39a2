"""Forecast reports: self-contained HTML, Markdown with a PNG beside it, or JSON.

A report leads with the verdict, then says when it was generated, for which
host and over which data window. The same input always gives the same bytes:
matplotlib runs on the Agg backend with a fixed SVG hash salt and no date or
software metadata, and the generation time is part of the input (the end of
the data window unless the caller names one), so a cron job that publishes the
report only shows a diff when the forecast changed. Reports hold no secret:
their files follow the umask.
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nodus_cli.errors import UsageError
from nodus_cli.forecast.model import ForecastResult
from nodus_cli.fsutil import atomic_write
from nodus_cli.jsonvalues import jsonable

SUFFIXES = (".html", ".md", ".json")
CREATOR = "nodus"
COLUMNS = ("step", "time", "forecast", "lower", "upper")


@dataclass(frozen=True)
class ReportOptions:
    """What the reader asked for beyond the forecast itself."""

    generated: datetime | None = None  # None: the end of the data window
    all_steps: bool = False  # every step ahead instead of the key ones


def _chart(result: ForecastResult, fmt: str) -> bytes:
    """The chart of ``chart_figure`` as SVG or PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    with matplotlib.rc_context(
        {"svg.hashsalt": CREATOR, "svg.fonttype": "path", "font.family": "DejaVu Sans"}
    ):
        figure = chart_figure(result)
        try:
            buffer = io.BytesIO()
            metadata: dict[str, Any] = (
                {"Date": None, "Creator": CREATOR} if fmt == "svg" else {"Software": CREATOR}
            )
            figure.savefig(buffer, format=fmt, metadata=metadata)
        finally:
            plt.close(figure)
    return buffer.getvalue()


def chart_figure(result: ForecastResult) -> Any:
    """History, forecast, 95% interval, threshold and anomalies; the legend outside the data.

    Times on the axis are in the zone of the result's times (``--tz``).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import dates as mdates
    from matplotlib import pyplot as plt

    zone = result.times[0].tzinfo if result.times else None
    figure, created_axes = plt.subplots(figsize=(10, 4.6), dpi=100, layout="constrained")
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
                label=f"anomalies ({result.anomaly_method})",
            )
        if result.crossing is not None:
            axes.axvline(result.crossing.expected, color="#d62728", linewidth=0.8, alpha=0.6)
        axes.set_title(result.series)
        axes.grid(alpha=0.3)
        locator = mdates.AutoDateLocator(tz=zone)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
        if zone is not None:
            axes.set_xlabel(f"time ({result.times[0].tzname()})")
        figure.legend(loc="outside lower center", ncols=5, fontsize=8, frameon=False)
    except BaseException:
        plt.close(figure)
        raise
    return figure


def key_steps(result: ForecastResult) -> list[tuple[str, int]]:
    """(what, step index) of the steps a reader needs: first crossing, peak, end of horizon."""
    if not result.mean:
        return []
    steps: list[tuple[str, int]] = []
    crossing = result.crossing
    if crossing is not None and not crossing.already and crossing.expected in result.times:
        steps.append(("first crossing", result.times.index(crossing.expected)))
    worst = min if result.direction == "below" and result.threshold is not None else max
    peak = worst(range(len(result.mean)), key=lambda i: result.mean[i])
    steps.append(("lowest" if worst is min else "peak", peak))
    steps.append(("end of horizon", len(result.mean) - 1))
    named: dict[int, list[str]] = {}
    for what, index in steps:
        named.setdefault(index, []).append(what)
    return [(", ".join(whats), index) for index, whats in sorted(named.items())]


def _table_rows(result: ForecastResult, all_steps: bool) -> list[tuple[str, ...]]:
    rows = result.rows()
    chosen = (
        [(str(i + 1), i) for i in range(len(rows))]
        if all_steps
        else [(f"{i + 1} ({what})", i) for what, i in key_steps(result)]
    )
    return [
        (
            label,
            rows[i]["time"].isoformat(),
            f"{rows[i]['forecast']:g}",
            f"{rows[i]['lower']:g}",
            f"{rows[i]['upper']:g}",
        )
        for label, i in chosen
    ]


def _facts(result: ForecastResult, options: ReportOptions) -> list[str]:
    """When, for which host and over which data the report was made, and how."""
    generated = options.generated
    if generated is None:
        when = "as of the last data point" if result.window else "with no data"
        stamp = result.window[1] if result.window else None
    else:
        when, stamp = "", generated
    if stamp is not None and result.times:
        zone = result.times[0].tzinfo
        stamp = stamp.astimezone(zone)
    generated_text = " ".join(p for p in (stamp.isoformat() if stamp else "", when) if p)
    facts = [f"Generated: {generated_text}", f"Host: {result.host or 'not labelled'}"]
    if result.window is not None:
        start, end = result.window
        facts.append(f"Data: {result.points:,} points, {start.isoformat()} to {end.isoformat()}")
    facts.append(
        f"Model: {result.model}; season: {result.season_points} points; "
        f"step: {result.step_seconds:g} s; interval: 95%"
    )
    facts.append(
        f"Anomalies shown: those of detect --method {result.anomaly_method}"
        if result.anomaly_method
        else "Anomalies shown: none (detect has not run on this series)"
    )
    return facts


def _table_title(options: ReportOptions) -> str:
    return "Every step" if options.all_steps else "Key steps (--all-steps for every step)"


def render_html(result: ForecastResult, options: ReportOptions | None = None) -> bytes:
    options = options or ReportOptions()
    svg = _chart(result, "svg").decode()
    svg = svg[svg.index("<svg") :]  # drop the XML prologue and doctype inside HTML
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in _table_rows(result, options.all_steps)
    )
    header = "".join(f"<th>{name}</th>" for name in COLUMNS)
    facts = "\n".join(f"<li>{html.escape(fact)}</li>" for fact in _facts(result, options))
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
<p class="verdict"><strong>{html.escape(result.summary())}</strong></p>
<ul>
{facts}
</ul>
{svg}
<h2>{_table_title(options)}</h2>
<table>
<tr>{header}</tr>
{rows}
</table>
</body>
</html>
"""
    return page.encode()


def _markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def render_markdown(
    result: ForecastResult, image_name: str, options: ReportOptions | None = None
) -> bytes:
    options = options or ReportOptions()
    lines = [
        f"# Forecast: {result.series}",
        "",
        f"**{result.summary()}**",
        "",
        *(f"- {fact}" for fact in _facts(result, options)),
        "",
        f"![forecast of {result.series}]({image_name})",
        "",
        f"## {_table_title(options)}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|---:|---:|---:|",
        *(
            "| " + " | ".join(_markdown_cell(cell) for cell in row) + " |"
            for row in _table_rows(result, options.all_steps)
        ),
        "",
    ]
    return "\n".join(lines).encode()


def render_json(result: ForecastResult, options: ReportOptions | None = None) -> bytes:
    """Every step: JSON is for programs, which want the whole forecast."""
    options = options or ReportOptions()
    document = result.document()
    generated = options.generated or (result.window[1] if result.window else None)
    document["generated"] = generated
    return (json.dumps(jsonable(document), indent=2, sort_keys=True) + "\n").encode()


def write_report(
    result: ForecastResult, path: Path, options: ReportOptions | None = None
) -> list[Path]:
    """Write the report chosen by the file suffix; returns every file written."""
    options = options or ReportOptions()
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"--report must end in {', '.join(SUFFIXES)}; got {path.name}")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent}: no such directory")
    if suffix == ".html":
        atomic_write(path, render_html(result, options), follow_umask=True)
        return [path]
    if suffix == ".json":
        atomic_write(path, render_json(result, options), follow_umask=True)
        return [path]
    image = path.with_suffix(".png")
    atomic_write(image, _chart(result, "png"), follow_umask=True)
    atomic_write(path, render_markdown(result, image.name, options), follow_umask=True)
    return [path, image]
