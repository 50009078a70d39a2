"""`nodus sql` on TPC-H: verified rewrites, noise band, dialect round trips, lint, TPC-DS.

Run: python tests/bench/sql.py [--scale 1] [--data DIR] [--runs 7] [--json FILE]

Needs `tpchgen-cli` (pip install 'nodus[bench]'), run on demand only. It generates TPC-H
at the scale factor as Parquet (cached in --data), loads it into a DuckDB file, and
reports, all measured in this run:

1. the noise band: each original query timed against itself (interleaved runs);
2. `rewrite --verify` (default rules) on the 22 queries: identical results (checked
   again independently), and the time ratio rewritten / original per query and as
   geometric mean; the same for sqlglot's full optimizer (all rules) for reference;
3. per-rule effect: queries changed, refused as culprit, median step time ratio;
4. transpile round trips duckdb -> D -> duckdb for every sqlglot dialect, executed and
   compared with the original results: dialects at 22/22 and the constructs blocking
   the rest (an error naming the construct, never a silent drop);
5. lint of the 22 files: in-process and as a `nodus sql lint` subprocess;
6. TPC-DS (99 queries, no data): parse, rewrite and round trip without crashes.

`--lint-only` measures only the comparison with SQLFluff (`pip install 'nodus[bench]'`,
dialect duckdb): whole-process wall time of `nodus sql lint` and `sqlfluff lint` on the
22 TPC-H and 99 TPC-DS files in the same run (their ratio), and which of ten seeded
bugs each tool flags. `--stability N` verifies each TPC-H query N times
(`rewrite --verify`, default rules) and counts the queries whose verdict changed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from nodus_cli.errors import NodusError  # noqa: E402
from nodus_cli.sqltools.catalog import execute  # noqa: E402
from nodus_cli.sqltools.compare import compare_results  # noqa: E402
from nodus_cli.sqltools.parsing import dialect_names  # noqa: E402
from nodus_cli.sqltools.rewrite import resolve_rules, rewrite_sql, verify_rewrite  # noqa: E402
from nodus_cli.sqltools.timing import Timing, time_pair  # noqa: E402
from nodus_cli.sqltools.transpile import transpile_sql, writable  # noqa: E402

TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
SHARED = Path(os.environ.get("NODUS_SHARED") or PROJECT.parent / "shared")


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def build_database(scale: float, data: Path, target: Path) -> float:
    """Generate TPC-H Parquet with tpchgen-cli (once per --data) and load it; seconds."""
    started = time.perf_counter()
    folder = data / f"sf{scale:g}"
    if not all((folder / f"{t}.parquet").exists() for t in TABLES):
        tool = shutil.which("tpchgen-cli") or str(Path(sys.executable).with_name("tpchgen-cli"))
        subprocess.run(
            [tool, "parquet", "-s", f"{scale:g}", f"--output-dir={folder}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    import duckdb

    con = duckdb.connect(str(target))
    for table in TABLES:
        con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?)",
            [str(folder / f"{table}.parquet")],
        )
    con.close()
    return time.perf_counter() - started


def ratios_of(timing: Timing) -> tuple[float, float]:
    """Second / first on the medians and on the best runs."""
    first, second = timing.medians
    return second / first, min(timing.second) / min(timing.first)


def noise_band(con: Any, queries: dict[str, str], runs: int) -> dict[str, tuple[float, float]]:
    ratios = {}
    for name, sql in queries.items():
        execute(con, sql)  # warm
        ratios[name] = ratios_of(time_pair(con, sql, sql, runs))
    return ratios


def rewrite_bench(
    con: Any, queries: dict[str, str], rules: list[str], runs: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    per_rule: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"changed": 0, "culprit": 0, "errors": 0, "ratios": []}
    )
    for name, sql in queries.items():
        started = time.perf_counter()
        report = rewrite_sql(sql, rules=rules, con=con)
        verify_rewrite(report, con, runs=runs)
        spent = time.perf_counter() - started
        expected, _ = execute(con, sql)
        actual, _ = execute(con, report.rewritten)
        identical = compare_results(expected, actual, ordered=report.ordered) is None
        same_text = report.rewritten.strip() == report.original.strip()
        measured_ratio, best_ratio = ratios_of(time_pair(con, sql, report.rewritten, runs))
        for step in report.steps:
            effect = per_rule[step.rule]
            effect["changed"] += step.changed
            effect["errors"] += step.error is not None
            if step.time_ratio is not None:
                effect["ratios"].append(step.time_ratio)
        if report.culprit:
            per_rule[report.culprit]["culprit"] += 1
        rows.append(
            {
                "query": name,
                "identical": identical,
                "kept": report.kept,
                "reason": report.reason,
                "culprit": report.culprit,
                "same_text": same_text,
                "measured_ratio": measured_ratio,
                "best_ratio": best_ratio,
                "verify_seconds": spent,
            }
        )
        print(
            f"  {name}: {'kept' if report.kept else 'original'} ratio {measured_ratio:.3f}"
            f" ({report.reason or 'verified'})",
            file=sys.stderr,
        )
    return rows, per_rule


def transpile_bench(
    con: Any, queries: dict[str, str], expected: dict[str, list[Any]]
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for dialect in dialect_names():
        if not writable(dialect):
            results[dialect] = {"identical": 0, "blockers": ["sqlglot cannot write it"]}
            continue
        identical = 0
        blockers: Counter[str] = Counter()
        for name, sql in queries.items():
            try:
                there = transpile_sql(sql, "duckdb", dialect).sql
                back = transpile_sql(there, dialect, "duckdb").sql
            except NodusError as exc:
                blockers[f"{name}: {exc.message[:110]}"] += 1
                continue
            except Exception as exc:  # a crash is a finding: report it
                blockers[f"{name}: CRASH {type(exc).__name__}: {str(exc)[:80]}"] += 1
                continue
            try:
                rows, _ = execute(con, back)
            except NodusError as exc:
                blockers[f"{name}: does not run back on duckdb: {exc.message[:90]}"] += 1
                continue
            difference = compare_results(expected[name], rows, ordered=False)
            if difference is None:
                identical += 1
            else:
                blockers[f"{name}: DIFFERENT RESULT {difference[:80]}"] += 1
        results[dialect] = {"identical": identical, "blockers": sorted(blockers)}
        print(f"  {dialect}: {identical}/{len(queries)}", file=sys.stderr)
    return results


def lint_bench(files: list[Path]) -> dict[str, float]:
    from nodus_cli.sqltools.lint import lint_source

    texts = [(path.read_text(), str(path)) for path in files]
    lint_source(texts[0][0])  # import sqlglot outside the measurement
    started = time.perf_counter()
    findings = sum(len(lint_source(text, name).findings) for text, name in texts)
    in_process = time.perf_counter() - started
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    walls = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "nodus_cli", "sql", "lint", *map(str, files), "--json"],
            env=env,
            capture_output=True,
            check=False,
        )
        walls.append(time.perf_counter() - started)
    return {"in_process": in_process, "subprocess": statistics.median(walls), "findings": findings}


def tpcds_bench(folder: Path) -> dict[str, Any]:
    outcome: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    files = sorted(folder.glob("q*.sql"))
    for path in files:
        sql = path.read_text()
        for stage, action in (
            ("rewrite", lambda s=sql: rewrite_sql(s, rules=resolve_rules("all"))),
            *(
                (
                    f"roundtrip:{d}",
                    lambda s=sql, d=d: transpile_sql(
                        transpile_sql(s, "duckdb", d).sql, d, "duckdb"
                    ),
                )
                for d in dialect_names()
                if writable(d)
            ),
        ):
            try:
                action()
                outcome[f"{stage.split(':')[0]} ok"] += 1
            except NodusError as exc:
                outcome[f"{stage.split(':')[0]} refused"] += 1
                notes[exc.message[:70]] += 1
            except Exception as exc:
                outcome[f"{stage.split(':')[0]} CRASH"] += 1
                notes[f"CRASH {path.stem} {stage}: {type(exc).__name__} {str(exc)[:60]}"] += 1
    return {"queries": len(files), "outcome": dict(outcome), "top_notes": notes.most_common(8)}


# Ten seeded bugs: (name, query, the nodus code that addresses it, the SQLFluff codes that
# do). A tool flags the bug when it reports one of its codes for the query.
SEEDED_BUGS: list[tuple[str, str, str, frozenset[str]]] = [
    ("= NULL in WHERE", "SELECT o_orderkey FROM orders WHERE o_comment = NULL", "NX002",
     frozenset({"CV05"})),
    ("<> NULL in CASE", "SELECT CASE WHEN o_comment <> NULL THEN 1 ELSE 0 END AS c FROM orders",
     "NX002", frozenset({"CV05"})),
    ("NOT IN over a nullable subquery",
     "SELECT o_orderkey FROM orders WHERE o_custkey NOT IN (SELECT c_custkey FROM customer)",
     "NX001", frozenset()),
    ("NOT IN a list with NULL", "SELECT count(*) FROM logs WHERE NOT level IN ('info', NULL)",
     "NX008", frozenset({"CV05"})),
    ("implicit cross join",
     "SELECT o.o_orderkey, n.n_name FROM orders AS o, nation AS n WHERE o.o_orderkey < 3",
     "NX003", frozenset({"AM08"})),
    ("LIMIT without ORDER BY", "SELECT o_orderkey FROM orders LIMIT 5", "NX004",
     frozenset({"AM09"})),
    ("function on the time column in WHERE",
     "SELECT count(*) FROM logs WHERE date_trunc('day', time) = DATE '2024-01-01'", "NX005",
     frozenset()),
    ("SELECT * in a view", "CREATE VIEW recent AS SELECT * FROM orders", "NX006",
     frozenset({"AM04"})),
    ("unused CTE", "WITH a AS (SELECT 1 AS x), b AS (SELECT 2 AS y)\nSELECT x FROM a", "NX007",
     frozenset({"ST03"})),
    ("UNION of 2 and 1 columns", "SELECT a, b FROM t UNION ALL SELECT a FROM u", "NX009",
     frozenset({"AM07"})),
]  # fmt: skip
LAYOUT_PREFIXES = ("LT", "CP", "JJ", "TQ")  # style, not bugs


def _sqlfluff_codes(files: list[Path]) -> tuple[dict[str, set[str]], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "--dialect", "duckdb", "--format", "json",
         "--processes", "1", "--disable-progress-bar", *map(str, files)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    found: dict[str, set[str]] = {}
    for entry in json.loads(done.stdout or "[]"):
        found[Path(entry["filepath"]).name] = {v["code"] for v in entry["violations"]}
    return found, wall


def _nodus_codes(files: list[Path]) -> tuple[dict[str, set[str]], float]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nodus_cli", "sql", "lint", *map(str, files), "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    found: dict[str, set[str]] = {}
    for finding in json.loads(done.stdout or "{}").get("findings", []):
        found.setdefault(Path(finding["file"]).name, set()).add(finding["code"])
    return found, wall


def lint_compare(files: list[Path], rounds: int) -> dict[str, Any]:
    """Whole-process wall times on the same files, interleaved; the seeded-bug table."""
    nodus_walls, fluff_walls = [], []
    for _ in range(rounds):
        nodus_walls.append(_nodus_codes(files)[1])
        fluff_walls.append(_sqlfluff_codes(files)[1])
        print(f"  nodus {nodus_walls[-1]:.2f} s, sqlfluff {fluff_walls[-1]:.2f} s", file=sys.stderr)
    bugs = []
    with tempfile.TemporaryDirectory() as tmp:
        seeded = []
        for index, (_name, sql, _code, _fluff) in enumerate(SEEDED_BUGS):
            path = Path(tmp) / f"bug{index:02d}.sql"
            path.write_text(sql + ";\n")
            seeded.append(path)
        nodus_found, _ = _nodus_codes(seeded)
        fluff_found, _ = _sqlfluff_codes(seeded)
    for path, (name, _sql, code, fluff_codes) in zip(seeded, SEEDED_BUGS, strict=True):
        fluff = fluff_found.get(path.name, set())
        bugs.append(
            {
                "bug": name,
                "nodus": code in nodus_found.get(path.name, set()),
                "sqlfluff": bool(fluff & fluff_codes),
                "nodus_codes": sorted(nodus_found.get(path.name, set())),
                "sqlfluff_codes": sorted(c for c in fluff if not c.startswith(LAYOUT_PREFIXES)),
            }
        )
    nodus, fluff = statistics.median(nodus_walls), statistics.median(fluff_walls)
    return {"files": len(files), "nodus_s": nodus, "sqlfluff_s": fluff,
            "speedup": fluff / nodus, "bugs": bugs}  # fmt: skip


def report_lint_compare(out: Any, result: dict[str, Any]) -> None:
    out.write(
        f"\nlint, whole process on {result['files']} files (22 TPC-H + 99 TPC-DS): nodus "
        f"{result['nodus_s']:.2f} s, sqlfluff {result['sqlfluff_s']:.2f} s: nodus is "
        f"{result['speedup']:.1f}x faster\n\n| seeded bug | nodus | sqlfluff | nodus codes | "
        "sqlfluff codes (not layout) |\n|---|---|---|---|---|\n"
    )
    for bug in result["bugs"]:
        out.write(
            f"| {bug['bug']} | {'yes' if bug['nodus'] else 'no'} | "
            f"{'yes' if bug['sqlfluff'] else 'no'} | {', '.join(bug['nodus_codes'])} | "
            f"{', '.join(bug['sqlfluff_codes'])} |\n"
        )
    missed = [b["bug"] for b in result["bugs"] if b["sqlfluff"] and not b["nodus"]]
    out.write(
        f"\nbugs flagged: nodus {sum(b['nodus'] for b in result['bugs'])}/10, sqlfluff "
        f"{sum(b['sqlfluff'] for b in result['bugs'])}/10; found by sqlfluff and missed by "
        f"nodus: {', '.join(missed) or 'none'}\n"
    )


def verdict_stability(con: Any, queries: dict[str, str], repeats: int) -> dict[str, Any]:
    """Each query verified ``repeats`` times: the verdicts (kept or which reason)."""
    verdicts: dict[str, list[str]] = {}
    for name, sql in queries.items():
        for _ in range(repeats):
            report = rewrite_sql(sql, con=con)
            verify_rewrite(report, con)
            kind = "kept" if report.kept else (report.reason or "").split(":")[0].split(" (")[0]
            verdicts.setdefault(name, []).append(kind)
            interval = (
                f" {report.ratio:.3f} [{report.ratio_low:.3f}, {report.ratio_high:.3f}]"
                if report.ratio is not None and report.ratio_low is not None
                else ""
            )
            if report.confirmation:
                interval += " then {:.3f} [{:.3f}, {:.3f}]".format(*report.confirmation)
            print(f"  {name}: {kind}{interval}, {report.runs} pairs", file=sys.stderr)
    changed = [name for name, kinds in verdicts.items() if len(set(kinds)) > 1]
    flipped = [name for name, kinds in verdicts.items() if len({k == "kept" for k in kinds}) > 1]
    return {"repeats": repeats, "verdicts": verdicts, "changed": changed, "flipped": flipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "nodus-tpch")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--skip-all-rules", action="store_true", help="skip the all-rules run")
    parser.add_argument(
        "--static-only", action="store_true", help="only lint timing and TPC-DS (no TPC-H data)"
    )
    parser.add_argument("--lint-only", action="store_true", help="only the SQLFluff comparison")
    parser.add_argument("--lint-rounds", type=int, default=1)
    parser.add_argument("--stability", type=int, default=0, help="verify each query N times")
    args = parser.parse_args()
    tpch = SHARED / "data" / "tpch"
    if args.lint_only:
        files = sorted(tpch.glob("q*.sql")) + sorted((SHARED / "data" / "tpcds").glob("q*.sql"))
        report_lint_compare(sys.stdout, lint_compare(files, args.lint_rounds))
        return
    if args.static_only:
        lint = lint_bench(sorted(tpch.glob("q*.sql")))
        report_static(
            sys.stdout, len(list(tpch.glob("q*.sql"))), lint, tpcds_bench(SHARED / "data" / "tpcds")
        )
        return

    import duckdb

    queries = {p.stem: p.read_text() for p in sorted(tpch.glob("q*.sql"))}
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "tpch.duckdb"
        print(f"generating and loading TPC-H SF{args.scale:g} ...", file=sys.stderr)
        load_seconds = build_database(args.scale, args.data, database)
        con = duckdb.connect(str(database), read_only=True)
        expected = {name: execute(con, sql)[0] for name, sql in queries.items()}
        if args.stability:
            print(f"verdict stability ({args.stability} verifications each) ...", file=sys.stderr)
            stability = verdict_stability(con, queries, args.stability)
            sys.stdout.write(
                f"\nverdict stability: {len(queries) - len(stability['flipped'])} of "
                f"{len(queries)} queries gave the same verdict (rewrite kept or not) "
                f"{args.stability} times; flipped: {', '.join(stability['flipped']) or 'none'}; "
                f"same verdict with another reason: "
                f"{', '.join(sorted(set(stability['changed']) - set(stability['flipped'])))}\n"
            )
            for name, kinds in stability["verdicts"].items():
                sys.stdout.write(f"  {name}: {', '.join(sorted(set(kinds)))}\n")
            return
        print("noise band ...", file=sys.stderr)
        noise = noise_band(con, queries, args.runs)
        print("rewrite --verify, default rules ...", file=sys.stderr)
        default_rows, per_rule = rewrite_bench(con, queries, resolve_rules("default"), args.runs)
        all_rows: list[dict[str, Any]] = []
        if not args.skip_all_rules:
            print("rewrite --verify, all rules ...", file=sys.stderr)
            all_rows, all_per_rule = rewrite_bench(con, queries, resolve_rules("all"), args.runs)
            for rule, effect in all_per_rule.items():
                if rule not in per_rule:
                    per_rule[rule] = effect
        print("transpile round trips ...", file=sys.stderr)
        transpile = transpile_bench(con, queries, expected)
        con.close()
    lint = lint_bench(sorted(tpch.glob("q*.sql")))
    print("TPC-DS robustness ...", file=sys.stderr)
    tpcds = tpcds_bench(SHARED / "data" / "tpcds")
    report(args, load_seconds, noise, default_rows, all_rows, per_rule, transpile, lint, tpcds)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "scale": args.scale,
                    "noise": noise,
                    "default": default_rows,
                    "all": all_rows,
                    "per_rule": {
                        k: {**v, "ratios": [round(r, 3) for r in v["ratios"]]}
                        for k, v in per_rule.items()
                    },
                    "transpile": transpile,
                    "lint": lint,
                    "tpcds": tpcds,
                },
                indent=2,
                default=str,
            )
        )


def _cells(row: dict[str, Any]) -> list[str]:
    kept = "yes" if not row["same_text"] else "no"
    return [str(row["identical"]), kept, f"{row['measured_ratio']:.3f} / {row['best_ratio']:.3f}"]


def report(
    args: argparse.Namespace,
    load_seconds: float,
    noise: dict[str, tuple[float, float]],
    default_rows: list[dict[str, Any]],
    all_rows: list[dict[str, Any]],
    per_rule: dict[str, dict[str, Any]],
    transpile: dict[str, dict[str, Any]],
    lint: dict[str, float],
    tpcds: dict[str, Any],
) -> None:
    out = sys.stdout
    out.write(
        f"\n# nodus sql on TPC-H SF{args.scale:g} (load {load_seconds:.1f} s, "
        f"{args.runs} interleaved runs)\n\n"
    )
    medians = [m for m, _ in noise.values()]
    bests = [b for _, b in noise.values()]
    out.write(
        f"noise band (each original against itself): median-run ratio geomean "
        f"{geomean(medians):.3f}, range {min(medians):.3f}..{max(medians):.3f}; best-run "
        f"ratio geomean {geomean(bests):.3f}, range {min(bests):.3f}..{max(bests):.3f}\n\n"
    )
    out.write(
        "| query | noise (median / best) | default: identical | kept | ratio median / best |"
        " all rules: identical | kept | ratio median / best | why not kept (all rules) |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    by_all = {row["query"]: row for row in all_rows}
    for row in default_rows:
        other = by_all.get(row["query"])
        noise_median, noise_best = noise[row["query"]]
        columns = [
            row["query"],
            f"{noise_median:.3f} / {noise_best:.3f}",
            *_cells(row),
            *(_cells(other) if other else ["", "", ""]),
            ((other or {}).get("reason") or "")[:70],
        ]
        out.write("| " + " | ".join(columns) + " |\n")
    for label, rows in (("default rules", default_rows), ("all rules", all_rows)):
        if not rows:
            continue
        ratios = [row["measured_ratio"] for row in rows]
        bests = [row["best_ratio"] for row in rows]
        worst = max(rows, key=lambda row: row["measured_ratio"])
        kept = [row for row in rows if not row["same_text"]]
        out.write(
            f"\n{label}: identical {sum(r['identical'] for r in rows)}/{len(rows)}, "
            f"rewrite kept {len(kept)} (the other {len(rows) - len(kept)} return the "
            f"original text), geomean ratio median {geomean(ratios):.3f} / best "
            f"{geomean(bests):.3f}, max median ratio {worst['measured_ratio']:.3f} "
            f"({worst['query']}, {'a rewrite' if not worst['same_text'] else 'original text'})"
            f", effective geomean (original text = 1.0) "
            f"{geomean([r['measured_ratio'] if not r['same_text'] else 1.0 for r in rows]):.3f}"
            f", kept rewrites only: geomean {geomean([r['measured_ratio'] for r in kept]):.3f}"
            f" / {geomean([r['best_ratio'] for r in kept]):.3f}, "
            f"verify time {sum(r['verify_seconds'] for r in rows):.1f} s\n"
        )
    out.write(
        "\n| rule | queries changed | culprit of a refusal | errors | median step ratio |\n"
        "|---|---|---|---|---|\n"
    )
    for rule, effect in per_rule.items():
        median = statistics.median(effect["ratios"]) if effect["ratios"] else float("nan")
        out.write(
            f"| {rule} | {effect['changed']} | {effect['culprit']} | {effect['errors']} | "
            f"{median:.3f} |\n"
        )
    total = len(default_rows)
    full = sorted(d for d, r in transpile.items() if r["identical"] == total)
    out.write(
        f"\ntranspile round trip duckdb -> D -> duckdb, {total}/{total} identical "
        f"({len(full)} dialects): {', '.join(full)}\n\n"
    )
    for dialect, result in transpile.items():
        if result["identical"] != total:
            blockers = "; ".join(result["blockers"][:3])
            more = f" (+{len(result['blockers']) - 3} more)" if len(result["blockers"]) > 3 else ""
            out.write(f"- {dialect}: {result['identical']}/{total}: {blockers}{more}\n")
    report_static(out, total, lint, tpcds)


def report_static(out: Any, total: int, lint: dict[str, float], tpcds: dict[str, Any]) -> None:
    out.write(
        f"\nlint of the {total} files: {lint['in_process'] * 1000:.0f} ms in process, "
        f"{lint['subprocess'] * 1000:.0f} ms as `nodus sql lint` (startup included), "
        f"{lint['findings']:.0f} findings\n"
    )
    out.write(f"\nTPC-DS ({tpcds['queries']} queries, no data): {tpcds['outcome']}\n")
    for note, count in tpcds["top_notes"]:
        out.write(f"  {count} x {note}\n")


if __name__ == "__main__":
    main()
