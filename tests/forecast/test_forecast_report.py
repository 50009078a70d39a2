"""Forecast reports a person reads: verdict first, when/where/what, key steps, time zone,
the legend off the data, the detector in use, umask modes; clipped intervals and coverage."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from nodus_cli.anomaly.source import parse_series
from nodus_cli.forecast.model import (
    clip_to_range,
    forecast_source,
    interval_coverage,
)
from nodus_cli.forecast.report import chart_figure, key_steps
from nodus_cli.fsutil import atomic_write
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace
from tests.anomaly.test_detect import START, STEP, cycle_series, insert_series
from tests.forecast.test_forecast import rising


def insert_labelled(home: Path, name: str, values, labels: dict[str, str]) -> None:
    with open_store(Workspace(home, "test")) as store:
        store.con.executemany(
            "INSERT INTO metrics (time, series, labels, value, source) VALUES (?, ?, ?, ?, 'test')",
            [[START + i * STEP, name, json.dumps(labels), float(v)] for i, v in enumerate(values)],
        )


def report_text(cli, home: Path, suffix: str, *args: str) -> str:
    path = home.parent / f"report{suffix}"
    result = cli("forecast", *args, "--report", str(path))
    assert result.exit_code == 0, result.stderr
    return path.read_text()


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_report_leads_with_the_verdict_and_says_when_where_and_what(
    cli, nodus_home: Path, suffix: str
) -> None:
    insert_labelled(nodus_home, "disk", rising(), {"host": "db1"})
    text = report_text(cli, nodus_home, suffix, "disk", "--horizon", "1d", "--threshold", "90")
    verdict = text.index("expected above 90 at")
    for fact in ("Generated: ", "Host: db1", "Data: 432 points, 2026-01-01T00:00:00+00:00 to"):
        assert fact in text
        assert text.index(fact) > verdict  # the verdict comes first
    last = (START + 431 * STEP).isoformat()
    assert f"Generated: {last} as of the last data point" in text
    stamped = report_text(
        cli, nodus_home, suffix, "disk", "--generated", "2026-02-03T04:05:06Z", "--horizon", "1h"
    )
    assert "Generated: 2026-02-03T04:05:06+00:00" in stamped
    assert "Host: not labelled" not in stamped


def test_report_table_gives_key_steps_unless_all_steps(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "disk", rising())
    args = ("disk", "--horizon", "1d", "--threshold", "90")
    short = report_text(cli, nodus_home, ".md", *args)
    rows = [line for line in short.splitlines() if line.startswith("| ") and "(" in line]
    labels = [row.split("|")[1].strip() for row in rows]
    assert [label.split(" ", 1)[1] for label in labels] == [
        "(first crossing)",
        "(peak, end of horizon)",
    ]
    assert "--all-steps for every step" in short
    full = report_text(cli, nodus_home, ".md", *args, "--all-steps")
    steps = [line for line in full.splitlines() if line.startswith("| ") and "+00:00" in line]
    assert len(steps) == 288  # one day of 5-minute steps


def test_key_steps_name_each_step_once(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "disk", rising())
    with open_store(Workspace(nodus_home, "test")) as store:
        result = forecast_source(store, parse_series("disk"), horizon=timedelta(hours=2))
    steps = key_steps(result)
    assert [index for _, index in steps] == sorted({index for _, index in steps})
    assert steps[-1] == ("peak, end of horizon", len(result.times) - 1)


def test_times_are_shown_in_the_time_zone_asked_for(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "disk", rising())
    args = ("disk", "--horizon", "1h", "--threshold", "90", "--tz", "Europe/Paris")
    doc = cli("forecast", *args, "--json").json()
    assert all(row["time"].endswith("+01:00") for row in doc["forecast"])
    assert doc["window"]["start"] == "2026-01-01T01:00:00+01:00"
    page = report_text(cli, nodus_home, ".html", *args)
    assert "2026-01-01T01:00:00+01:00" in page and "time (CET)" in page
    bad = cli("forecast", "disk", "--tz", "Mars/Olympus")
    assert bad.exit_code == 2 and "unknown time zone" in bad.stderr


def test_the_legend_never_covers_the_data(cli, nodus_home: Path) -> None:
    from matplotlib import pyplot as plt

    insert_series(nodus_home, "load", cycle_series(900))
    assert cli("detect", "load").exit_code == 0
    with open_store(Workspace(nodus_home, "test")) as store:
        result = forecast_source(
            store, parse_series("load"), horizon=timedelta(hours=6), threshold=95
        )
    figure = chart_figure(result)
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        (axes,) = figure.axes
        plot_area = axes.get_window_extent(renderer)
        legends = [*figure.legends, *([axes.get_legend()] if axes.get_legend() else [])]
        assert legends
        for legend in legends:
            assert not legend.get_window_extent(renderer).overlaps(plot_area)
    finally:
        plt.close(figure)


def test_anomalies_drawn_are_those_of_the_method_in_use(cli, nodus_home: Path) -> None:
    values = cycle_series(900)
    values[850] += 60  # one spike every detector sees
    insert_series(nodus_home, "load", values)
    assert cli("detect", "load", "--method", "hst").exit_code == 0
    assert cli("detect", "load", "--method", "robust").exit_code == 0
    with open_store(Workspace(nodus_home, "test")) as store:
        result = forecast_source(store, parse_series("load"), horizon=timedelta(hours=1))
        robust = store.con.execute(
            "SELECT time FROM anomalies WHERE series = 'load' AND method = 'robust' "
            "AND time >= ? ORDER BY time",
            [result.history_times[0]],
        ).fetchall()
    assert result.anomaly_method == "robust"
    assert [t for t, _ in result.anomalies] == [t for (t,) in robust]
    page = report_text(cli, nodus_home, ".html", "load", "--horizon", "1h")
    assert "detect --method robust" in page


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_report_files_follow_the_umask(cli, nodus_home: Path, mask: int) -> None:
    insert_series(nodus_home, "disk", rising())
    previous = os.umask(mask)
    try:
        for suffix in (".html", ".md", ".json"):
            report = nodus_home.parent / f"disk{suffix}"
            assert cli("forecast", "disk", "--report", str(report)).exit_code == 0
            written = [report, report.with_suffix(".png")] if suffix == ".md" else [report]
            for path in written:
                assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path.name
    finally:
        os.umask(previous)


def test_atomic_write_stays_private_unless_asked(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        atomic_write(tmp_path / "secret", b"x")
        atomic_write(tmp_path / "public", b"x", follow_umask=True)
        atomic_write(tmp_path / "given", b"x", 0o640, follow_umask=True)
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"secret": 0o600, "public": 0o644, "given": 0o640}


def test_a_series_never_negative_gets_a_lower_bound_of_zero(cli, nodus_home: Path) -> None:
    rng = np.random.default_rng(5)
    counts = rng.poisson(0.4, 600).astype(float)  # errors per minute: mostly 0, never below
    insert_series(nodus_home, "errors", counts)
    doc = cli("forecast", "errors", "--horizon", "6h", "--json").json()
    assert min(row["lower"] for row in doc["forecast"]) == 0
    assert all(row["forecast"] >= 0 for row in doc["forecast"])


def test_clipping_only_when_the_history_never_went_below_zero() -> None:
    mean, lower, upper = np.array([1.0, 0.5]), np.array([-1.0, -2.0]), np.array([3.0, 4.0])
    clipped = clip_to_range(np.array([0.0, 2.0]), mean, lower, upper)
    assert [list(a) for a in clipped] == [[1.0, 0.5], [0.0, 0.0], [3.0, 4.0]]
    kept = clip_to_range(np.array([-0.1, 2.0]), mean, lower, upper)
    assert list(kept[1]) == [-1.0, -2.0]


def test_interval_coverage_counts_the_points_inside_their_interval() -> None:
    actual = [1.0, 2.0, 3.0, 10.0]
    assert interval_coverage(actual, [0, 2, 4, 0], [2, 2, 5, 9]) == 0.5  # bounds included
    assert np.isnan(interval_coverage([], [], []))
