"""Run nodus's DuckDB-dialect SQL over a Parquet export, on DuckDB or on Apache Spark.

Both engines register each exported table as a view with the store table's columns,
reading the files themselves (no partition discovery: every file holds every
column). Spark gets the query transpiled by ``nodus_cli.sqltools.transpile``; a
construct Spark cannot express is an ``UnsupportedConstruct`` error (exit 2).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodus_cli.errors import InputError, UsageError, first_line
from nodus_cli.progress import SILENT, Progress, ProgressLike, reporter
from nodus_cli.scaleout import QueryEngine
from nodus_cli.scaleout.dataset import (
    PARQUET_GLOB,
    ExportedTable,
    exported_tables,
    quote_identifier,
    sql_literal,
)
from nodus_cli.sqltools.deep import deep_recursion
from nodus_cli.store.db import Invocation, Store
from nodus_cli.store.query import QueryResult, run_query
from nodus_cli.store.sandbox import SANDBOX_CONFIG, FileAllowance, lock_down, one_read_statement
from nodus_cli.store.sandbox import allow_files as allow_files_for_sql

if TYPE_CHECKING:
    from nodus_cli.sqltools.transpile import TranspileResult

DEFAULT_MASTER = "local[*]"
JAVA_MIN_VERSION = 17
SPARK_INSTALL = "pip install 'nodus[spark]'"
QUERY_ERROR_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Spark type names as DuckDB names, so the shared renderer treats both engines alike.
_SPARK_TYPES = {
    "string": "VARCHAR",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
    "binary": "BLOB",
}


class SparkUnavailable(UsageError):
    """``--engine spark`` cannot start: pyspark or a Java runtime is missing (exit 2)."""


@dataclass
class EngineResult(QueryResult):
    """A query result plus what the transpiler wants the user to check."""

    warnings: list[str] = field(default_factory=list)


@contextlib.contextmanager
def query_export(
    sql: str,
    engine: QueryEngine,
    data: Path | None,
    *,
    master: str | None = None,
    limit: int | None = None,
    allow_files: Sequence[Path] = (),
    protected: Sequence[Path] = (),
    on_progress: ProgressLike | None = None,
) -> Iterator[EngineResult]:
    """Run read-only ``sql`` over the export in ``data``; the result is valid in the block.

    On DuckDB the SQL may read the export and ``allow_files`` (never ``protected``).
    With Spark, ``on_progress`` hears the stage: starting, then the running stages
    with their tasks done, until the block ends."""
    if master is not None and engine is not QueryEngine.spark:
        raise UsageError("--master goes with --engine spark")
    if data is None:
        raise UsageError(
            f"--engine {engine.value} reads a Parquet export: pass --data DIR "
            "(made by nodus export)"
        )
    tables = exported_tables(Path(data))
    if engine is QueryEngine.duckdb:
        allowance = allow_files_for_sql([Path(data), *allow_files], protected=protected)
        with _duckdb_over(tables, allowance) as store:
            result = run_query(store, sql, limit=limit)
            yield EngineResult(result.columns, result.types, result.rows)
        return
    translated = transpile_for_spark(sql)
    wanted = referenced_tables(translated)
    tables = [t for t in tables if wanted is None or t.name.lower() in wanted]
    progress = reporter(on_progress)
    progress.stage("starting Spark")
    with spark_engine(master) as spark, _watch_stages(spark, progress):
        json_columns = register_spark_views(spark, tables)
        yield run_spark(spark, translated, json_columns=json_columns, limit=limit)


# How often the Spark stages are looked at for the progress line, in seconds.
STAGE_POLL = 0.25


@contextlib.contextmanager
def _watch_stages(spark: Any, progress: Progress) -> Iterator[None]:
    """Tell ``progress`` which Spark stages run and their tasks done, from a thread
    polling the status tracker while the block runs (stopped before Spark is)."""
    import threading

    if progress is SILENT:
        yield
        return
    tracker = spark.sparkContext.statusTracker()
    stop = threading.Event()

    def poll() -> None:
        progress.stage("reading the export")
        while not stop.wait(STAGE_POLL):
            try:
                infos = [tracker.getStageInfo(i) for i in tracker.getActiveStageIds()]
            except Exception:  # py4j gone (Spark stopping): nothing more to tell
                return
            running = [
                f"stage {i.stageId}: {i.numCompletedTasks}/{i.numTasks} tasks" for i in infos if i
            ]
            if running:
                progress.stage(", ".join(running))

    watcher = threading.Thread(target=poll, name="nodus-spark-stages", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


# --- DuckDB over Parquet ------------------------------------------------------------------


@contextlib.contextmanager
def _duckdb_over(tables: list[ExportedTable], allowance: FileAllowance) -> Iterator[Store]:
    """An in-memory DuckDB whose views read the exported tables, locked down for user SQL.

    Its catalog is writable (it lives and dies with this run), so the statement check
    is what keeps a COPY from writing into the allowed export directory.
    """
    import duckdb

    con = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
    try:
        for table in tables:
            name = quote_identifier(table.name)
            con.execute(f"CREATE VIEW {name} AS {_duckdb_source(table)}")
        lock_down(con, allowance)
        yield Store(
            con, Path(":memory:"), read_only=True, invocation=Invocation("query"), sandboxed=True
        )
    finally:
        con.close()


def _duckdb_source(table: ExportedTable) -> str:
    columns = table.columns
    if not table.files() and table.manifest is not None:
        nulls = ", ".join(
            f"CAST(NULL AS {t}) AS {quote_identifier(n)}" for n, t in table.manifest.columns
        )
        return f"SELECT {nulls} WHERE false"
    select = ", ".join(quote_identifier(c) for c in columns) if columns else "*"
    files = sql_literal(str(table.folder / PARQUET_GLOB))
    return (
        f"SELECT {select} FROM read_parquet({files}, hive_partitioning = false, "
        "union_by_name = true)"
    )


def _check_read_only(sql: str) -> None:
    """The same refusal of writes as on the store, decided by DuckDB's parser."""
    import duckdb

    con = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
    try:
        one_read_statement(con, sql, "nodus query")
    finally:
        con.close()


# --- Spark --------------------------------------------------------------------------------


def require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable(
            f"--engine spark needs pyspark, an optional extra: {SPARK_INSTALL}"
        ) from None


def java_version() -> int | None:
    """The major version of the Java runtime Spark would use, None when there is none."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).is_file():
        return None
    try:
        probe = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', probe.stderr + probe.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def require_java() -> None:
    version = java_version()
    if version is None:
        raise SparkUnavailable(
            f"--engine spark needs a Java runtime {JAVA_MIN_VERSION} or newer and none was "
            "found (install one, e.g. openjdk-17-jre-headless, or set JAVA_HOME)"
        )
    if version < JAVA_MIN_VERSION:
        raise SparkUnavailable(
            f"--engine spark needs Java {JAVA_MIN_VERSION} or newer, found Java {version} "
            "(set JAVA_HOME to a newer runtime)"
        )


def start_spark(master: str = DEFAULT_MASTER, conf: dict[str, str] | None = None) -> Any:
    """A new SparkSession with nodus's settings: UTC, no UI, quiet logs.

    A local master binds to 127.0.0.1 only; ``conf`` adds or overrides settings.
    """
    require_pyspark()
    require_java()
    from pyspark.sql import SparkSession

    local = master.startswith("local")
    if not os.environ.get("SPARK_CONF_DIR") and not os.environ.get("SPARK_HOME"):
        os.environ["SPARK_CONF_DIR"] = str(Path(__file__).with_name("spark_conf"))
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.runSQLOnFiles": "false",  # no SELECT FROM csv.`path`: see read_only_frame
    }
    if local:
        settings |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    builder = SparkSession.builder.master(master).appName("nodus")
    for key, value in (settings | (conf or {})).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        raise InputError(f"cannot start Spark with master {master}: {first_line(exc)}") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextlib.contextmanager
def spark_engine(master: str | None = None) -> Iterator[Any]:
    """The active SparkSession if there is one (kept), else a new one (stopped after)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    session = start_spark(master or DEFAULT_MASTER)
    try:
        yield session
    finally:
        session.stop()


def register_spark_views(spark: Any, tables: list[ExportedTable]) -> set[str]:
    """Make each exported table a temporary view; return the names of JSON columns."""
    json_columns: set[str] = set()
    for table in tables:
        if table.files():
            frame = (
                spark.read.option("recursiveFileLookup", "true")
                .option("pathGlobFilter", "*.parquet")
                .parquet(str(table.folder))
            )
            if table.columns:
                frame = frame.select(*[f"`{c.replace('`', '``')}`" for c in table.columns])
        elif table.manifest is not None:
            schema = ", ".join(
                f"`{n.replace('`', '``')}` {spark_type(t)}" for n, t in table.manifest.columns
            )
            frame = spark.createDataFrame([], schema)
        else:
            continue
        frame.createOrReplaceTempView(table.name)
        if table.manifest is not None:
            json_columns |= {n.lower() for n, t in table.manifest.columns if t.upper() == "JSON"}
    return json_columns


def spark_type(duckdb_type: str) -> str:
    """A DuckDB column type in Spark's DDL (JSON is text in Parquet, so STRING)."""
    from sqlglot import exp

    if duckdb_type.upper() == "JSON":
        return "STRING"
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect="spark")


def transpile_for_spark(sql: str) -> TranspileResult:
    """Refuse writes as on the store, then transpile DuckDB SQL to Spark SQL.

    Done before any JVM starts, so that a bad query fails fast.
    """
    from nodus_cli.sqltools.transpile import transpile_sql

    _check_read_only(sql)
    return transpile_sql(sql, "duckdb", "spark")


@deep_recursion
def referenced_tables(translated: TranspileResult) -> set[str] | None:
    """Lower-case names of the tables a query reads (None when it cannot tell).

    Spark reads each registered table's Parquet footers, so only these are registered.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    names: set[str] = set()
    try:
        for statement in translated.statements:
            for tree in sqlglot.parse(statement, read="spark"):
                if tree is not None:
                    names |= {table.name.lower() for table in tree.find_all(exp.Table)}
    except (ParseError, TokenError):
        return None
    return names


def run_spark(
    spark: Any,
    translated: TranspileResult,
    *,
    json_columns: set[str] | None = None,
    limit: int | None = None,
) -> EngineResult:
    """Run transpiled SQL (``transpile_for_spark``) over views (``register_spark_views``).

    String columns named in ``json_columns`` are typed JSON for the renderer.
    """
    json_columns = json_columns or set()
    (statement,) = translated.statements  # one: transpile_for_spark refuses more
    with _spark_errors():
        spark.conf.set("spark.sql.runSQLOnFiles", "false")  # csv.`/etc/passwd` is no table
        frame = read_only_frame(spark, statement)
        if limit is not None:
            frame = frame.limit(limit)
        fields = frame.schema.fields
        columns = [f.name for f in fields]
        types = [_duckdb_type_name(f, json_columns) for f in fields]
        rows = _spark_rows(*_exact_timestamps(frame))
    return EngineResult(columns, types, rows, translated.warnings)


# Registry groups whose functions reach outside the data: a nondeterministic "misc"
# function reads the JVM or the files under the data (reflect, java_method,
# input_file_name), a protobuf function reads a descriptor file, a table function other
# than a generator reads what Spark keeps (python_worker_logs).
_OUTSIDE_GROUPS = ("misc_funcs", "protobuf_funcs", "table_funcs")
_HARMLESS_TABLE_FUNCTIONS = ("org.apache.spark.sql.catalyst.plans.logical.Range",)


def read_only_frame(spark: Any, statement: str) -> Any:
    """``statement`` as a DataFrame (analysed, not run), refused unless it only reads.

    Spark's own parser decides what a query is (``parseQuery``: no command, DDL, DML,
    ``INSERT OVERWRITE DIRECTORY``, ``CACHE``, ``ADD JAR`` or ``SET`` parses as one),
    so nothing runs before the check; the analysed plan is then refused if it uses a
    function that reaches outside the data (``_outside_functions``).
    """
    from pyspark.errors import ParseException

    session = spark._jsparkSession
    try:
        session.sessionState().sqlParser().parseQuery(statement)
    except Exception as exc:  # py4j wraps Spark's ParseException
        if not isinstance(exc, ParseException) and "ParseException" not in str(exc):
            raise
        try:
            kind = session.sessionState().sqlParser().parsePlan(statement).nodeName()
        except Exception:
            raise InputError(f"Spark SQL error: {first_line(exc)}") from None
        raise UsageError(
            f"--engine spark runs queries only; refused: {kind} (it is not a query)"
        ) from None
    frame = spark.sql(statement)  # analysis only: a query runs when its rows are asked for
    plan = json.loads(frame._jdf.queryExecution().analyzed().toJSON())
    outside = _outside_functions(spark)
    used = sorted({outside[name] for name in _plan_classes(plan) if name in outside})
    if used:
        raise UsageError(f"--engine spark refuses {', '.join(used)}: it reaches outside the data")
    return frame


def _plan_classes(node: Any) -> Iterator[str]:
    """The class of every plan node and expression of a plan's JSON, subqueries included."""
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class"), str):
                yield item["class"]
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


_OUTSIDE: dict[str, dict[str, str]] = {}


def _outside_functions(spark: Any) -> dict[str, str]:
    """Class name -> function name of every registered function that reaches outside
    the data, read from Spark's function registries (once per Spark application)."""
    application = spark.sparkContext.applicationId
    if application in _OUTSIDE:
        return _OUTSIDE[application]
    jvm = spark._jvm
    nondeterministic = jvm.java.lang.Class.forName(
        "org.apache.spark.sql.catalyst.expressions.Nondeterministic"
    )
    state = spark._jsparkSession.sessionState()
    outside: dict[str, str] = {}
    for registry in (state.functionRegistry(), state.tableFunctionRegistry()):
        listed = registry.listFunction().iterator()
        while listed.hasNext():
            name = listed.next()
            info = registry.lookupFunction(name).get()
            group, class_name = info.getGroup(), info.getClassName()
            if group not in _OUTSIDE_GROUPS or class_name in _HARMLESS_TABLE_FUNCTIONS:
                continue
            if group == "misc_funcs":
                try:
                    found = jvm.java.lang.Class.forName(class_name)
                except Exception:
                    continue  # a builder, not an expression: what it builds is listed
                if not nondeterministic.isAssignableFrom(found):
                    continue  # current_user, version, typeof: values, not reads
            aliases = {name.funcName(), *outside.get(class_name, "").split("/")} - {""}
            outside[class_name] = "/".join(sorted(aliases))  # reflect/java_method: one class
    _OUTSIDE[application] = outside
    return outside


def _duckdb_type_name(spark_field: Any, json_columns: set[str]) -> str:
    name = spark_field.dataType.simpleString()
    if name == "string" and spark_field.name.lower() in json_columns:
        return "JSON"
    if name.startswith("decimal"):
        return name.upper()
    return _SPARK_TYPES.get(name, name.upper())


def _exact_timestamps(frame: Any) -> tuple[Any, set[int]]:
    """Timestamps as microseconds since the epoch (pyspark would shift them to local time).

    Returns the frame to collect and the positions of the timestamp columns.
    """
    from pyspark.sql import functions
    from pyspark.sql.types import TimestampType

    fields = frame.schema.fields
    positions = {i for i, f in enumerate(fields) if isinstance(f.dataType, TimestampType)}
    if not positions:
        return frame, positions
    positional = frame.toDF(*[f"_c{i}" for i in range(len(fields))])
    return positional.select(
        *[
            functions.unix_micros(f"_c{i}") if i in positions else f"_c{i}"
            for i in range(len(fields))
        ]
    ), positions


def _spark_rows(frame: Any, timestamp_positions: set[int]) -> Iterator[tuple[Any, ...]]:
    with _spark_errors():
        for row in frame.toLocalIterator():
            yield tuple(
                _from_micros(value) if i in timestamp_positions else _python(value)
                for i, value in enumerate(row)
            )


def _from_micros(value: int | None) -> dt.datetime | None:
    return None if value is None else _EPOCH + dt.timedelta(microseconds=value)


def _python(value: Any) -> Any:
    """Spark Rows (structs) as dicts, recursively; everything else as it is."""
    from pyspark.sql import Row

    if isinstance(value, Row):
        return {k: _python(v) for k, v in value.asDict().items()}
    if isinstance(value, list):
        return [_python(v) for v in value]
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, bytearray):
        return bytes(value)
    return value


@contextlib.contextmanager
def _spark_errors() -> Iterator[None]:
    """Spark's analysis and runtime errors as one-line ``InputError``s.

    pyspark also logs each error with its JVM stack trace; nodus reports it once.
    """
    import logging

    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    for name in QUERY_ERROR_LOGGERS:
        logging.getLogger(name).disabled = True
    try:
        yield
    except (PySparkException, Py4JError) as exc:
        raise InputError(f"Spark SQL error: {first_line(exc)}") from None
