"""Log patterns: grouping accuracy on loghub next to drain3, and what learning costs.

Accuracy. Every loghub file is ingested by the real command (``nodus ingest``, so its
header parsing is part of the test) into a fresh workspace, and each line's pattern
is read back from the store. Grouping accuracy (Zhu et al., ICSE-SEIP 2019): a line
is correct when the set of lines sharing its predicted pattern equals the set sharing
its true template. Ground truth (``*_structured.csv``) is read here only, to score.
``drain3`` (default settings, generic number/IP/hex masks) runs on the same lines.

Cross-validation. The miner's one constant (``Settings.variable_values``) is chosen by
leave-one-system-out: for each of the 11 systems, the value with the best mean on the
other ten (ties: the smaller) scores the held-out one. Both the cross-validated mean
and the full-set figures per value are printed.

Speed. A generated JSON-lines file (``--lines``, default 1,000,000, with 600 kinds of
message and variable fields) is ingested with patterns learned and with
``--no-patterns`` (rows still get their shape, learning waits): ratio of the two. The
assignment alone (shapes of every row in DuckDB + learning) is timed in-process and
compared with drain3 over the same messages.

Run: python tests/bench/patterns.py [--lines N] [--skip-speed]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.ingest.schema import shape_sql  # noqa: E402
from nodus_cli.patterns import miner  # noqa: E402

SHARED = Path(os.environ.get("NODUS_SHARED") or PROJECT.parent / "shared")
LOGHUB = SHARED / "data" / "loghub"
SCORED = ("Apache", "BGL", "HDFS", "HPC", "HealthApp", "Linux", "OpenSSH", "Proxifier")
SCORED += ("Spark", "Windows", "Zookeeper")
GRID = (2, 3, 4, 5, 6, 8, 10)


def nodus(home: Path, *args: str) -> None:
    env = {**os.environ, "NODUS_HOME": str(home), "PYTHONPATH": str(PROJECT)}
    # nodus's bytecode cached as an installed nodus has it (not compiled on every run)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(home.parent / "bytecode")
    subprocess.run([sys.executable, "-m", "nodus_cli", "-q", *args], check=True, env=env)


def truth(system: str) -> dict[int, str]:
    path = LOGHUB / system / f"{system}_2k.log_structured.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return {int(row["LineId"]): row["EventId"] for row in csv.DictReader(handle)}


def grouping_accuracy(predicted: dict[int, object], gold: dict[int, str]) -> float:
    by_pred: dict[object, set[int]] = defaultdict(set)
    by_gold: dict[str, set[int]] = defaultdict(set)
    for line, label in predicted.items():
        by_pred[label].add(line)
    for line, label in gold.items():
        by_gold[label].add(line)
    correct = sum(1 for line in gold if by_pred[predicted.get(line)] == by_gold[gold[line]])
    return correct / len(gold)


def store_lines(con: object, system: str) -> list[tuple[int, str, int, str]]:
    """(line_no, message, current pattern, masked shape) of one system's file."""
    return con.execute(  # type: ignore[attr-defined]
        """SELECT l.line_no, coalesce(l.message, ''), coalesce(s.absorbed_by, s.id),
                  s.template
           FROM logs AS l JOIN patterns AS s ON s.id = l.pattern_id AND s.kind = 'shape'
           WHERE l.source = ? ORDER BY l.line_no""",
        [f"{system}_2k.log"],
    ).fetchall()


def per_system_mining(rows: list[tuple[int, str, int, str]], settings: miner.Settings):
    masked = {line: shape for line, _, _, shape in rows}
    templates = miner.mine(Counter(masked.values()), settings)
    of = {message: t.text for t in templates for message in t.messages}
    return {line: of[text] for line, text in masked.items()}


def drain3_assign(messages: list[str]) -> list[int]:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.masking_instructions = [
        MaskingInstruction(
            r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"
        ),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(0x[a-fA-F0-9]+)((?=[^A-Za-z0-9])|$)", "HEX"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    ]
    config.profiling_enabled = False
    tm = TemplateMiner(config=config)
    # A cluster keeps its id while its template generalises: the id at add time is
    # the line's final cluster.
    return [tm.add_log_message(m)["cluster_id"] for m in messages]


def accuracy(args: argparse.Namespace, work: Path) -> None:
    import duckdb

    home = work / "loghub"
    files = sorted(str(p) for p in LOGHUB.glob("*/*_2k.log"))
    started = time.perf_counter()
    nodus(home, "ingest", *files)
    print(
        f"ingested {len(files)} loghub files with patterns in {time.perf_counter() - started:.2f} s"
    )
    con = duckdb.connect(str(home / "store.duckdb"), read_only=True)
    table: dict[int, dict[str, float]] = {value: {} for value in GRID}
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    for system in SCORED:
        rows = store_lines(con, system)
        gold = truth(system)
        ours[system] = grouping_accuracy({r[0]: r[2] for r in rows}, gold)
        drained = drain3_assign([r[1] for r in rows])
        theirs[system] = grouping_accuracy(
            {r[0]: c for r, c in zip(rows, drained, strict=True)}, gold
        )
        for value in GRID:
            assigned = per_system_mining(rows, miner.Settings(variable_values=value))
            table[value][system] = grouping_accuracy(assigned, gold)
    held_out: dict[str, tuple[int, float]] = {}
    for system in SCORED:
        best = max(GRID, key=lambda v: (sum(table[v][s] for s in SCORED if s != system), -v))
        held_out[system] = (best, table[best][system])
    print("\ngrouping accuracy per system (nodus: the store after `nodus ingest`, defaults)")
    print(f"{'system':<11} {'nodus':>6} {'drain3':>7} {'LOSO':>6} {'chosen':>7}")
    for system in SCORED:
        value, score = held_out[system]
        print(f"{system:<11} {ours[system]:6.3f} {theirs[system]:7.3f} {score:6.3f} {value:7d}")
    mean = lambda d: sum(d.values()) / len(d)  # noqa: E731
    print(
        f"{'mean':<11} {mean(ours):6.3f} {mean(theirs):7.3f} "
        f"{sum(s for _, s in held_out.values()) / len(SCORED):6.3f}"
    )
    print(f"lowest nodus system: {min(ours, key=ours.get)} {min(ours.values()):.3f}")
    print("\nfull-set mean per value of variable_values (per-system mining):")
    for value in GRID:
        print(f"  {value:3d}: {mean(table[value]):.4f}")
    print(f"default variable_values = {miner.Settings().variable_values}")


KINDS = 600
SYLLABLES = ("ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "ve", "zu")


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randrange(2, 4)))


def generate(path: Path, lines: int) -> list[str]:
    """JSON lines whose ``msg`` comes from KINDS templates with variable fields."""
    rng = random.Random(11)
    kinds = []
    for _ in range(KINDS):
        words = [_word(rng) for _ in range(rng.randrange(3, 7))]
        kinds.append((words, sorted(rng.sample(range(1, len(words) + 1), rng.randrange(1, 3)))))
    values = (
        lambda: str(rng.randrange(10**6)),
        lambda: f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        lambda: f"user{rng.randrange(10**5)}",
        lambda: f"{rng.random() * 100:.1f} ms",
    )
    messages = []
    base = 1_763_424_000
    with path.open("w") as out:
        for i in range(lines):
            words, slots = kinds[int(rng.paretovariate(1.2)) % KINDS]
            parts = list(words)
            for slot in reversed(slots):
                parts.insert(slot, rng.choice(values)())
            msg = " ".join(parts)
            messages.append(msg)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + i // 10))
            level = "error" if i % 50 == 0 else "info"
            out.write(json.dumps({"ts": stamp + "Z", "level": level, "msg": msg}) + "\n")
    return messages


def timed(home: Path, *args: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one nodus run."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    nodus(home, *args)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def speed(args: argparse.Namespace, work: Path) -> None:
    import duckdb

    from nodus_cli.patterns.learn import learn

    data = work / "app.jsonl"
    messages = generate(data, args.lines)
    print(f"\n{args.lines:,} generated JSON lines, {KINDS} kinds of message")
    # Untimed: a small ingest compiles nodus's bytecode into the cache for both sides.
    head = work / "head.jsonl"
    with data.open() as lines:
        head.write_text("".join(itertools.islice(lines, 1000)))
    nodus(work / "warm", "ingest", str(head))
    on: list[tuple[float, float]] = []
    off: list[tuple[float, float]] = []
    for run in range(args.runs):
        off.append(timed(work / f"off{run}", "ingest", "--no-patterns", str(data)))
        on.append(timed(work / f"on{run}", "ingest", str(data)))
    for unit, side in (("wall", 0), ("CPU", 1)):
        best_on, best_off = min(t[side] for t in on), min(t[side] for t in off)
        paired = statistics.median(a[side] / b[side] for a, b in zip(on, off, strict=True))
        print(
            f"ingest {unit} time, patterns learned: best {best_on:.2f} s   --no-patterns: "
            f"{best_off:.2f} s   ratio on/off {best_on / best_off:.2f} (required <= 1.25), "
            f"median of the paired ratios {paired:.2f}"
        )
    # The assignment alone, in-process on the store ingested without learning.
    con = duckdb.connect(str(work / "off0" / "store.duckdb"))
    started = time.perf_counter()
    con.execute(f"SELECT count(DISTINCT {shape_sql('message')}) FROM logs").fetchall()
    shapes_s = time.perf_counter() - started
    import datetime as dt

    con.execute("BEGIN")
    started = time.perf_counter()
    learned = learn(con, dt.datetime.now(dt.UTC))
    learn_s = time.perf_counter() - started
    templates = con.execute(
        "SELECT count(*) FROM patterns WHERE kind = 'template' AND absorbed_by IS NULL"
    ).fetchone()[0]
    con.execute("ROLLBACK")
    started = time.perf_counter()
    drain3_assign(messages[: args.drain_lines])
    drain_s = (time.perf_counter() - started) * len(messages) / min(len(messages), args.drain_lines)
    ours = shapes_s + learn_s
    print(
        f"assignment: shapes {shapes_s:.2f} s + learning {learn_s:.2f} s = {ours:.2f} s "
        f"({learned.new_shapes} shapes, {templates} templates)"
    )
    print(f"drain3 over the same lines: {drain_s:.1f} s (extrapolated from {args.drain_lines:,})")
    print(f"speed ratio drain3/nodus: {drain_s / ours:.1f}x (required >= 5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--drain-lines", type=int, default=200_000)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nodus-bench-patterns-") as tmp:
        accuracy(args, Path(tmp))
        if not args.skip_speed:
            speed(args, Path(tmp))


if __name__ == "__main__":
    main()
