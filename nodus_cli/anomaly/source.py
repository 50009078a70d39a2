"""Where the points of a detection or forecast come from: a metrics series or a query."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from nodus_cli.errors import InputError, NotFoundError, UsageError
from nodus_cli.store.db import Store
from nodus_cli.store.sandbox import one_read_statement, sql_error_text, sql_input_error

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SERIES = re.compile(r"^\s*(?P<name>[^{}\s]+)\s*(?:\{(?P<labels>.*)\})?\s*$")
_LABEL_TEXT = "coalesce(CAST(labels AS VARCHAR), '')"
MAX_LISTED = 10  # label sets named in the error before "and N more"
_LABEL = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^,\"]*?)\s*(?:,|$)"
)


@dataclass(frozen=True)
class Source:
    """A series name with label filter, or a read-only query returning (time, value)."""

    key: str  # names the series in the anomalies and detector_state tables
    name: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    sql: str | None = None
    label_set: str | None = None  # one exact label set (its JSON text), once resolved
    # A query source's (epoch µs, values), read on a sandboxed store (fetch_sql_points).
    points: tuple[Any, Any] | None = field(default=None, compare=False, repr=False)


def parse_series(text: str, extra_labels: str | None = None) -> Source:
    """``cpu`` or ``cpu{host="web1",env=prod}``, plus labels given apart (``host=web1``)."""
    match = _SERIES.match(text)
    if not match:
        raise UsageError(f"invalid series {text!r} (expected NAME or NAME{{label=value,...}})")
    pairs = dict(parse_labels(match.group("labels") or "", text))
    for label, value in parse_labels(extra_labels or "", extra_labels or ""):
        if pairs.get(label, value) != value:
            raise UsageError(f"label {label} is given twice, as {pairs[label]!r} and {value!r}")
        pairs[label] = value
    return _named(match.group("name"), tuple(sorted(pairs.items())))


def parse_labels(body: str, text: str) -> list[tuple[str, str]]:
    """``host=web1,env="prod"`` as (label, value) pairs."""
    labels: list[tuple[str, str]] = []
    body = body.strip()
    pos = 0
    while pos < len(body):
        label = _LABEL.match(body, pos)
        if not label or label.end() == pos:
            raise UsageError(f"invalid label filter in {text!r} (expected label=value,...)")
        value = label.group(2)
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        labels.append((label.group(1), value))
        pos = label.end()
    return labels


def _named(name: str, labels: tuple[tuple[str, str], ...], label_set: str | None = None) -> Source:
    key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else "")
    return Source(key, name=name, labels=labels, label_set=label_set)


def label_sets(store: Store, source: Source) -> list[Source]:
    """One source per distinct label set the series name and filter match, in label order."""
    import json

    if source.sql is not None or source.label_set is not None:
        return [source]
    where, params = _series_filter(source)
    rows = store.con.execute(
        f"SELECT DISTINCT {_LABEL_TEXT} FROM metrics WHERE {where}", params
    ).fetchall()
    if not rows:
        raise NotFoundError(f"series {source.key!r} not found in metrics")
    found = []
    for (text,) in rows:
        parsed = json.loads(text) if text else {}
        pairs = parsed.items() if isinstance(parsed, dict) else ()
        labels = tuple(
            sorted((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in pairs)
        )
        found.append(_named(str(source.name), labels, text))
    return sorted(found, key=lambda one: one.key)


def one_label_set(store: Store, source: Source) -> Source:
    """The source itself when it names one label set; several are a usage error."""
    sets = label_sets(store, source)
    if len(sets) == 1:
        return replace(sets[0], key=source.key)
    shown = ", ".join(one.key for one in sets[:MAX_LISTED])
    more = f" and {len(sets) - MAX_LISTED} more" if len(sets) > MAX_LISTED else ""
    raise UsageError(
        f"series {source.key!r} matches {len(sets)} label sets: {shown}{more}; "
        "pick one with --labels 'label=value,...' or score each with --each"
    )


def sql_source(sql: str) -> Source:
    digest = hashlib.sha256(" ".join(sql.split()).encode()).hexdigest()[:16]
    return Source(f"sql:{digest}", sql=sql)


def fetch_sql_points(
    store: Store,
    source: Source,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Source:
    """Run a query source's SQL on a sandboxed store and keep its points in the source.

    The command then opens the store for writing with no user SQL left to run there
    (a writable connection never sees the user's SQL).
    """
    if source.sql is None:
        return source
    if not store.sandboxed:
        raise ValueError("user SQL runs only on a sandboxed store (open_user_sql)")
    inner, params = _sql_inner(store, source.sql)
    inner = f"SELECT *, row_number() OVER () AS r FROM ({inner}) AS numbered"
    points = _points(store, inner, params, since=since, until=until)
    return replace(source, points=points)


def read_points(
    store: Store,
    source: Source,
    *,
    after: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[Any, Any]:
    """(epoch microseconds, values) in time order, points at the same time in input order.

    Missing and non-finite values are skipped. A series with no rows at all is
    ``NotFoundError``, one that matches several label sets ``UsageError``; a
    window with no new rows is just empty. A query source's points come from
    ``fetch_sql_points``, run before.
    """
    if source.sql is not None:
        if source.points is None:
            raise ValueError("a query source is read on a sandboxed store first")
        return _within_bounds(source.points, after=after, since=since, until=until)
    inner, params = _series_inner(store, one_label_set(store, source))
    return _points(store, inner, params, after=after, since=since, until=until)


def _epoch_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _within_bounds(
    points: tuple[Any, Any],
    *,
    after: datetime | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[Any, Any]:
    import numpy as np

    times_us, values = points
    keep = np.ones(len(times_us), dtype=bool)
    if after is not None:
        keep &= times_us > _epoch_us(after)
    if since is not None:
        keep &= times_us >= _epoch_us(since)
    if until is not None:
        keep &= times_us <= _epoch_us(until)
    return times_us[keep], values[keep]


def _points(
    store: Store,
    inner: str,
    params: list[Any],
    *,
    after: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[Any, Any]:
    """The points of ``inner`` (columns t, v, r) in time order, ties in ``r`` order."""
    import duckdb

    where = ["v IS NOT NULL", "isfinite(v)"]
    for bound, op in ((after, ">"), (since, ">="), (until, "<=")):
        if bound is not None:
            where.append(f"t {op} ?")
            params.append(bound)
    query = (
        f"SELECT epoch_us(t) AS t_us, v FROM ({inner}) AS points "
        f"WHERE {' AND '.join(where)} ORDER BY t, r"
    )
    try:
        arrays = store.con.execute(query, params).fetchnumpy()
    except duckdb.Error as exc:
        store.raise_if_damaged(exc)
        raise InputError(f"cannot read points: {sql_error_text(exc)}") from None
    import numpy as np

    return np.asarray(arrays["t_us"], dtype=np.int64), np.asarray(arrays["v"], dtype=float)


def _series_filter(source: Source) -> tuple[str, list[Any]]:
    conditions = ["series = ?"]
    params: list[Any] = [source.name]
    if source.label_set is not None:
        conditions.append(f"{_LABEL_TEXT} = ?")
        params.append(source.label_set)
    for label, value in source.labels:
        conditions.append("json_extract_string(labels, ?) = ?")
        params.extend([f"$.{label}", value])
    return " AND ".join(conditions), params


def _series_inner(store: Store, source: Source) -> tuple[str, list[Any]]:
    """The rows of one resolved label set; rowid keeps points at one time in input order."""
    where, params = _series_filter(source)
    return f"SELECT time AS t, value AS v, rowid AS r FROM metrics WHERE {where}", params


def _sql_inner(store: Store, sql: str) -> tuple[str, list[Any]]:
    import duckdb

    one_read_statement(store.con, sql, "--sql")
    text = sql.strip().rstrip(";")
    try:
        cursor = store.con.execute(f"SELECT * FROM ({text}) AS q LIMIT 0")
    except duckdb.Error as exc:
        store.raise_if_damaged(exc)
        raise sql_input_error(exc) from None
    columns = [d[0] for d in cursor.description or []]
    if len(columns) < 2:
        raise InputError("--sql must return two columns: time, value")
    time_col, value_col = (f'"{c.replace(chr(34), chr(34) * 2)}"' for c in columns[:2])
    return (
        f"SELECT CAST({time_col} AS TIMESTAMPTZ) AS t, CAST({value_col} AS DOUBLE) AS v "
        f"FROM ({text}) AS q",
        [],
    )
