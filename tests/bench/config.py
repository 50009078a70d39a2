"""`nodus config diff`: startup on small files and wall time on two 5 MB TOML files.

Startup is reported as ratios to a minimal one-command typer app (its ``--help``, and
running its command, which parses its options as every command run does) and
to ``nodus --help``, measured interleaved in the same run (target: the foundation's
startup budget, i.e. close to ``nodus --help``). The big diff compares two
generated ~5 MB TOML files that differ in about one key in seven (target: under 2 s).

Run: python tests/bench/config.py [--runs N] [--size-mb 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import MINIMAL, PROJECT, _time  # the startup benchmark's reference


def service_toml(variant: int, size: int) -> str:
    """Tables, sub-tables, arrays of tables, strings, numbers, booleans and datetimes."""
    blocks = ['title = "generated"\n']
    total, index = 0, 0
    while total < size:
        enabled = "true" if (index + variant) % 7 else "false"
        block = (
            f'[service_{index}]\nname = "svc-{index}"\nport = {8000 + index % 1000}\n'
            f"enabled = {enabled}\nratio = {index / 7:.4f}\n"
            f'tags = ["a", "b", "c{index % 13}"]\n'
            f"started = 2026-01-{1 + index % 28:02d}T10:00:00Z\n"
            f'[service_{index}.limits]\ncpu = {index % 16}\nmemory = "{index % 64}Gi"\n\n'
            f'[[service_{index}.backends]]\nhost = "10.0.{index % 255}.1"\n'
            f"weight = {index % 10}\n\n"
        )
        blocks.append(block)
        total += len(block)
        index += 1
    return "".join(blocks)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--big-runs", type=int, default=5)
    parser.add_argument("--size-mb", type=float, default=5.0)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "NODUS_HOME": tempfile.mkdtemp()}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "minimal.py").write_text(MINIMAL)
        (work / "a.toml").write_text('[pool]\nmax = 100\nmin = 5\n[log]\nlevel = "info"\n')
        (work / "b.toml").write_text('[pool]\nmax = 500\nmin = 5\n[log]\nlevel = "debug"\n')
        size = int(args.size_mb * 1_000_000)
        (work / "big_a.toml").write_text(service_toml(0, size))
        (work / "big_b.toml").write_text(service_toml(1, size))
        nodus = [sys.executable, "-m", "nodus_cli"]
        commands = {
            "minimal --help": [sys.executable, str(work / "minimal.py"), "--help"],
            # A command run parses and converts its options (--help does not): the fair
            # reference for a command's startup runs the minimal command.
            "minimal hello": [sys.executable, str(work / "minimal.py"), "hello", "--name", "x"],
            "nodus --help": [*nodus, "--help"],
            "config diff (small)": [
                *nodus,
                "config",
                "diff",
                str(work / "a.toml"),
                str(work / "b.toml"),
            ],
        }
        for command in commands.values():
            _time(command, 3, env)  # warm the file cache
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved so drift hits all equally
            for name, command in commands.items():
                samples[name] += _time(command, 1, env)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        references = ("minimal --help", "minimal hello", "nodus --help")
        print(f"{'':22s} {'median':>9s}  " + "  ".join(f"{r:>15s}" for r in references))
        for name, median in medians.items():
            ratios = "  ".join(f"{median / medians[r]:15.2f}" for r in references)
            print(f"{name:22s} {median * 1000:6.1f} ms  {ratios}")
        big = [*nodus, "config", "diff", str(work / "big_a.toml"), str(work / "big_b.toml")]
        times, cpu_times = [], []
        for _ in range(args.big_runs):
            cpu_before = _children_cpu()
            started = time.perf_counter()
            done = subprocess.run(big, stdout=subprocess.PIPE, env=env, check=True)
            times.append(time.perf_counter() - started)
            cpu_times.append(_children_cpu() - cpu_before)
        mb = (work / "big_a.toml").stat().st_size / 1e6
        changes = done.stdout.count(b"\n")
        print(
            f"config diff on two {mb:.1f} MB TOML files ({changes} changes): "
            f"median {statistics.median(times):.2f} s, best {min(times):.2f} s wall; "
            f"median {statistics.median(cpu_times):.2f} s CPU (target < 2 s)"
        )
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
