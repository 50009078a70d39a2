"""nodus query --as-of: the store as it was known at a moment, before and after an ingest."""

from __future__ import annotations

import datetime as dt
import json
import time


def test_query_as_of_hides_rows_committed_later(run_nodus, tmp_path):
    first = tmp_path / "a.jsonl"
    first.write_text(json.dumps({"ts": "2026-11-01T00:00:00Z", "msg": "a"}) + "\n")
    assert run_nodus("-q", "ingest", str(first)).returncode == 0
    time.sleep(0.05)
    between = dt.datetime.now(dt.UTC).isoformat()
    time.sleep(0.05)
    second = tmp_path / "b.jsonl"
    second.write_text(json.dumps({"ts": "2026-10-01T00:00:00Z", "msg": "b"}) + "\n")
    assert run_nodus("-q", "ingest", str(second)).returncode == 0
    sql = "SELECT string_agg(message, '+' ORDER BY message) AS m FROM logs"
    now = run_nodus("query", sql, "-f", "csv")
    then = run_nodus("query", sql, "--as-of", between, "-f", "csv")
    assert now.stdout.splitlines()[1] == "a+b"
    assert then.stdout.splitlines()[1] == "a"  # b.jsonl (older events) came later
    tables = json.loads(run_nodus("tables", "--json").stdout)
    as_of = {t["table"]: t["as_of"] for t in tables}
    assert as_of["logs"] == "committed_at" and as_of["detector_state"] is None
