"""The timeline as one self-contained HTML page: a lane per kind on a shared time axis,
the ranked list under it. No external resource, no clock: the same events give the
same bytes."""

from __future__ import annotations

import datetime as dt
import html

from nodus_cli.timeline.events import Event
from nodus_cli.timeline.rank import Related

WIDTH = 960
LANE = 28
LEFT = 110
COLOURS = {
    "logs": "#d62728",
    "anomalies": "#ff7f0e",
    "config": "#1f77b4",
    "keys": "#9467bd",
    "audit": "#2ca02c",
    "journal": "#7f7f7f",
    "patterns": "#8c564b",
    "source": "#17becf",
}


def render_html(
    events: list[Event],
    ranked: list[Related],
    since: dt.datetime,
    until: dt.datetime,
    around: dt.datetime | None,
) -> bytes:
    lanes = sorted({e.kind for e in events}, key=lambda k: list(COLOURS).index(k))
    span = max((until - since).total_seconds(), 1.0)

    def x(time: dt.datetime) -> float:
        return LEFT + (WIDTH - LEFT - 10) * max(
            0.0, min(1.0, (time - since).total_seconds() / span)
        )

    height = 30 + LANE * max(len(lanes), 1) + 20
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">']
    for index, kind in enumerate(lanes):
        y = 30 + LANE * index + LANE / 2
        svg.append(f'<text x="4" y="{y + 4:.0f}" font-size="12">{html.escape(kind)}</text>')
        svg.append(f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{y:.0f}" y2="{y:.0f}" stroke="#ddd"/>')
        for event in (e for e in events if e.kind == kind):
            title = html.escape(f"{event.time.isoformat()} {event.summary}")
            end = event.last or event.time
            if end > event.time:
                svg.append(
                    f'<line x1="{x(event.time):.1f}" x2="{x(end):.1f}" y1="{y:.0f}" '
                    f'y2="{y:.0f}" stroke="{COLOURS[kind]}" stroke-width="6">'
                    f"<title>{title}</title></line>"
                )
            svg.append(
                f'<circle cx="{x(event.time):.1f}" cy="{y:.0f}" r="5" '
                f'fill="{COLOURS[kind]}"><title>{title}</title></circle>'
            )
    if around is not None:
        svg.append(
            f'<line x1="{x(around):.1f}" x2="{x(around):.1f}" y1="20" '
            f'y2="{height - 20}" stroke="#000" stroke-dasharray="4 3"/>'
        )
    svg.append(f'<text x="{LEFT}" y="16" font-size="11">{html.escape(since.isoformat())}</text>')
    svg.append(
        f'<text x="{WIDTH - 10}" y="16" font-size="11" text-anchor="end">'
        f"{html.escape(until.isoformat())}</text>"
    )
    svg.append("</svg>")
    rows = "".join(
        f"<tr><td>{r.minutes_before:g} min before</td><td>{html.escape(r.event.kind)}</td>"
        f"<td>{html.escape(r.event.summary)}</td><td><code>{html.escape(r.event.ref)}</code>"
        "</td></tr>"
        for r in ranked
    )
    listing = "".join(
        f"<tr><td>{html.escape(e.time.isoformat())}</td><td>{html.escape(e.kind)}</td>"
        f"<td>{html.escape(e.source)}</td><td>{html.escape(e.summary)}</td>"
        f"<td><code>{html.escape(e.ref)}</code></td></tr>"
        for e in events
    )
    title = "nodus timeline " + (
        f"around {around.isoformat()}" if around else f"{since.isoformat()} to {until.isoformat()}"
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #eee;padding:2px 8px;text-align:left;font-size:13px}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>{len(events)} events.</p>
{"".join(svg)}
{_table("Before it, most likely related first", RANKED_HEAD, rows) if around else ""}
{_table("All events", EVENTS_HEAD, listing)}
</body></html>
"""
    return page.encode("utf-8")


RANKED_HEAD = ("when", "kind", "what", "follow")
EVENTS_HEAD = ("time", "kind", "source", "what", "follow")


def _table(title: str, head: tuple[str, ...], rows: str) -> str:
    cells = "".join(f"<th>{name}</th>" for name in head)
    return f"<h2>{title}</h2><table><tr>{cells}</tr>{rows}</table>"
