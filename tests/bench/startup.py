"""`nodus --help` wall time as a ratio to a minimal one-command typer app, same run.

Run: python tests/bench/startup.py [--runs N]   (target: ratio <= 1.3)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
MINIMAL = """
import typer
app = typer.Typer()
@app.command()
def hello(name: str = "world") -> None:
    \"\"\"Say hello.\"\"\"
    print(name)
@app.callback()
def main() -> None:
    \"\"\"A minimal app.\"\"\"
app()
"""


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True
        )
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(MINIMAL)
    minimal = [sys.executable, handle.name, "--help"]
    nodus = [sys.executable, "-m", "nodus_cli", "--help"]
    version = [sys.executable, "-m", "nodus_cli", "--version"]
    _time(minimal, 3, env), _time(nodus, 3, env)  # warm the file cache
    results: dict[str, list[float]] = {"minimal": [], "help": [], "version": []}
    for _ in range(args.runs):  # interleave so drift hits both equally
        results["minimal"] += _time(minimal, 1, env)
        results["help"] += _time(nodus, 1, env)
        results["version"] += _time(version, 1, env)
    os.unlink(handle.name)
    base = statistics.median(results["minimal"])
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:8s} median {median * 1000:7.1f} ms  ratio {median / base:5.2f}")


if __name__ == "__main__":
    main()
