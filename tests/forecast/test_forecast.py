"""nodus forecast: models never crash, crossings, --fail-on-breach, deterministic reports."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from nodus_cli.forecast.model import LINEAR_TREND, fit_forecast, regular_grid
from nodus_cli.series import detect_season
from tests.anomaly.test_detect import START, STEP, cycle_series, insert_series


def rising(n: int = 432) -> list[float]:
    rng = np.random.default_rng(3)
    return list(50 + 0.07 * np.arange(n) + rng.normal(0, 0.3, n))


@pytest.mark.parametrize("values", [np.zeros(300), np.full(300, 7.5), np.linspace(-1, 1, 300)])
def test_models_never_crash_on_flat_zero_mean_or_linear_series(values) -> None:
    fitted = fit_forecast(values, 24, times_s=np.arange(len(values)) * 300.0)
    assert np.isfinite(fitted.mean).all() and np.isfinite(fitted.sigma).all()
    if np.ptp(values) == 0:
        assert np.allclose(fitted.mean, values[-1])


def test_season_is_found_and_a_trend_is_not_a_season() -> None:
    times = np.arange(2000) * 300.0
    assert detect_season(times, cycle_series(2000)) == 288
    assert detect_season(times, np.arange(2000.0)) == 0


def test_regular_grid_fills_gaps() -> None:
    times = np.array([0.0, 60, 120, 300, 360])
    step, grid, values = regular_grid(times, np.array([1.0, 2, 3, 6, 7]))
    assert step == 60 and list(values) == [1, 2, 3, 4, 5, 6, 7] and len(grid) == 7


def test_threshold_crossing_and_fail_on_breach(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "disk", rising())
    soon = cli("forecast", "disk", "--horizon", "1d", "--threshold", "90", "--json")
    assert soon.exit_code == 0, soon.stderr
    doc = soon.json()
    crossing = doc["crossing"]
    assert crossing and crossing["earliest"] <= crossing["expected"]
    assert doc["model"] == LINEAR_TREND  # a steadily filling disk
    breach = cli("forecast", "disk", "--horizon", "1d", "--threshold", "90", "--fail-on-breach")
    assert breach.exit_code == 1 and "expected above 90" in breach.stderr
    calm = cli("forecast", "disk", "--horizon", "1h", "--threshold", "500", "--fail-on-breach")
    assert calm.exit_code == 0 and "not above 500 within 1h" in calm.stderr
    below = cli("forecast", "disk", "--threshold", "60", "--direction", "below", "--json")
    assert below.json()["crossing"] is None
    already = cli("forecast", "disk", "--threshold", "60", "--json").json()
    assert already["crossing"]["already"] is True


def test_until_limits_the_history(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "disk", rising())
    until = (START + 100 * STEP).isoformat()
    doc = cli("forecast", "disk", "--until", until, "--horizon", "30m", "--json").json()
    assert doc["history_end"] == until and len(doc["forecast"]) == 6
    first = doc["forecast"][0]
    assert first["lower"] <= first["forecast"] <= first["upper"]


@pytest.mark.parametrize("suffix", [".html", ".md", ".json"])
def test_reports_are_byte_identical_across_runs(cli, nodus_home: Path, suffix: str) -> None:
    insert_series(nodus_home, "load", cycle_series(900))
    assert cli("detect", "load").exit_code == 0  # anomalies are drawn in the chart
    outputs = []
    for run in ("a", "b"):
        folder = nodus_home.parent / run
        folder.mkdir()
        report = folder / f"load{suffix}"
        result = cli(
            "forecast", "load", "--horizon", "2h", "--threshold", "95", "--report", str(report)
        )
        assert result.exit_code == 0, result.stderr
        outputs.append(sorted((p.name, p.read_bytes()) for p in folder.iterdir()))
    assert outputs[0] == outputs[1]
    files = dict(outputs[0])
    if suffix == ".html":
        page = files["load.html"].decode()
        assert "<svg" in page and "<script" not in page and "<link" not in page
        assert not re.search(r'(src|href)="(https?:|//)', page)
    if suffix == ".md":
        assert "load.png" in files and "](load.png)" in files["load.md"].decode()


def test_forecast_errors(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "tiny", [1.0, 2.0])
    assert cli("forecast", "nope").exit_code == 2
    assert cli("forecast", "tiny").exit_code == 2
    insert_series(nodus_home, "disk", rising())
    assert cli("forecast", "disk", "--report", "out.txt").exit_code == 2
    assert cli("forecast", "disk", "--horizon", "soon").exit_code == 2


def test_forecast_table_output(cli, nodus_home: Path) -> None:
    insert_series(nodus_home, "disk", rising())
    result = cli("forecast", "disk", "--horizon", "30m", "--format", "csv")
    assert result.stdout.splitlines()[0] == "timestamp,forecast,lower,upper"
    assert len(result.stdout.splitlines()) == 7  # 30 minutes of 5-minute steps


def test_seasonal_ar_carries_the_baselines_current_miss_and_lets_it_fade() -> None:
    from nodus_cli.forecast.model import seasonal_ar, seasonal_naive

    rng = np.random.default_rng(11)
    season = 48
    noise = np.zeros(20 * season)
    for i in range(1, len(noise)):  # errors that persist from one point to the next
        noise[i] = 0.9 * noise[i - 1] + rng.normal(0, 1)
    values = 10 * np.sin(2 * np.pi * np.arange(len(noise)) / season) + noise
    values[-1] += 8  # the baseline misses the last point by a lot
    corrected = seasonal_ar(values, season, 2 * season) - seasonal_naive(
        values, season, 2 * season, 3
    )
    assert corrected[0] > 3  # most of the miss is carried into the next step
    assert abs(corrected[-1]) < 0.1 * abs(corrected[0])  # and fades out


def test_a_model_replaces_the_baseline_only_when_it_wins_stretch_by_stretch() -> None:
    from nodus_cli.forecast.model import _beats_baseline

    baseline = [np.full(36, 1.0)] * 6
    one_spike = [np.full(36, 0.0)] + [np.full(36, 1.1)] * 5  # a lower mean, won on one stretch
    assert not _beats_baseline(one_spike, baseline)
    assert _beats_baseline([np.full(36, 0.9)] * 6, baseline)
    assert not _beats_baseline([np.full(36, 0.9)] * 4 + [np.full(36, 1.1)] * 2, baseline)
    assert not _beats_baseline(baseline, baseline)  # ties never count for the model


def test_values_near_the_float_limit_forecast_as_the_same_series_scaled() -> None:
    times = np.arange(2000) * 300.0
    ordinary = cycle_series(2000)
    unit = 2.0**990  # about 1e298: squares of such values overflow
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would reach the user's stderr
        huge = fit_forecast(ordinary * unit, 48, times_s=times)
        assert detect_season(times, ordinary * unit) == detect_season(times, ordinary) == 288
    plain = fit_forecast(ordinary, 48, times_s=times)
    assert huge.model == plain.model
    assert np.array_equal(huge.mean, plain.mean * unit)
    assert np.array_equal(huge.sigma, plain.sigma * unit)


@pytest.mark.parametrize("method", ["auto", "robust", "hst"])
def test_values_near_the_float_limit_raise_no_numeric_warning(
    cli, nodus_home: Path, method: str
) -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(0, 1e300, 3000)
    values[2500] = 1.7e308  # after hst's calibration has seen enough
    insert_series(nodus_home, "huge", values)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detected = cli("detect", "huge", "--method", method, "--json")
        forecast = cli("forecast", "huge", "--horizon", "2h", "--json")
    assert detected.exit_code == 0 and forecast.exit_code == 0, detected.stderr + forecast.stderr
    if method != "hst":  # hst's lagged windows rank a lone spike with noise's extremes
        assert detected.json()["anomalies"] >= 1


def test_interval_width_follows_how_the_backtest_misses_grow() -> None:
    from nodus_cli.forecast.model import step_variance

    rng = np.random.default_rng(2)
    flat = [rng.normal(0, 1, 40) for _ in range(30)]  # noise around the right level
    walk = [np.cumsum(rng.normal(0, 1, 40)) for _ in range(30)]  # misses that grow
    noise = step_variance(flat, 40)
    assert 0.5 < noise[0] < 2 and noise[-1] < 1.5 * noise[0]
    grows = step_variance(walk, 40)
    assert grows[-1] > 5 * grows[0] and np.all(np.diff(grows) >= 0)
    assert np.array_equal(step_variance([], 3), np.zeros(3))


def test_autoregression_returns_to_the_mean_on_levels_and_holds_the_level_on_differences() -> None:
    from nodus_cli.forecast.model import autoregression

    rng = np.random.default_rng(5)
    around = np.zeros(2000)
    for i in range(1, len(around)):  # an AR(1) about 10: a latency between spikes
        around[i] = 0.8 * around[i - 1] + rng.normal()
    around += 10
    around[-1] = 20
    back = autoregression(around, 50, differenced=False)
    assert back[0] > 15 and abs(back[-1] - 10) < 1  # the spike fades to the mean
    walk = np.cumsum(rng.normal(size=2000))  # a wandering temperature has no mean to return to
    held = autoregression(walk, 50, differenced=True)
    assert np.allclose(held, walk[-1], atol=0.5)


def test_a_daily_shape_under_a_wander_is_tried_though_detection_sees_no_season() -> None:
    from nodus_cli.forecast.model import SEASONAL_NAIVE

    rng = np.random.default_rng(5)
    hours = 24 * 60
    times = np.arange(hours) * 3600.0
    values = 3 * np.sin(2 * np.pi * np.arange(hours) / 24) + np.cumsum(rng.normal(0, 1, hours))
    assert detect_season(times, values) == 0
    fitted = fit_forecast(values, 24, times_s=times)
    assert "ar+season-24" in fitted.holdout_mae and "ar-differenced+season-24" in fitted.holdout_mae
    assert fitted.holdout_mae[fitted.model] < fitted.holdout_mae[SEASONAL_NAIVE]


@pytest.mark.parametrize("persistence", [0.5, 0.9])
def test_the_combination_misses_no_more_than_its_members_do_on_average_and_intervals_cover(
    persistence: float,
) -> None:
    """The mean of forecasts misses by at most its members' mean miss (the triangle
    inequality), whatever the series; the 95% interval holds about 95% of what follows."""
    from nodus_cli.forecast.model import COMBINATION, COMBINED, Z95, interval_coverage

    rng = np.random.default_rng(7)
    points = 288 * 6
    noise = np.zeros(points)
    for i in range(1, points):
        noise[i] = persistence * noise[i - 1] + rng.normal()
    values = 100 + 20 * np.sin(2 * np.pi * np.arange(points) / 288) + noise
    times = np.arange(points) * 300.0
    inside = []
    for cut in np.linspace(points // 2, points - 36, 8).astype(int):
        fitted = fit_forecast(values[:cut], 36, times_s=times[:cut])
        mae = fitted.holdout_mae
        members = sorted((k for k in mae if k != COMBINATION), key=mae.__getitem__)[:COMBINED]
        assert mae[COMBINATION] <= np.mean([mae[k] for k in members]) * (1 + 1e-12)
        lower, upper = fitted.mean - Z95 * fitted.sigma, fitted.mean + Z95 * fitted.sigma
        inside.append(interval_coverage(values[cut : cut + 36], lower, upper))
    assert 0.85 <= np.mean(inside) <= 1.0
