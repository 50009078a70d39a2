"""Tables of ``nodus detect`` (migration 3): found anomalies and saved detector state."""

from __future__ import annotations

from typing import Any

from nodus_cli.store.migrations import Migration

TABLES = ("anomalies", "detector_state")


def create_tables(con: Any) -> None:
    con.execute(
        """CREATE TABLE anomalies (
            series VARCHAR NOT NULL,
            time TIMESTAMPTZ NOT NULL,
            value DOUBLE,
            score DOUBLE NOT NULL,
            method VARCHAR NOT NULL,
            reason VARCHAR
        )"""
    )
    con.execute(
        """CREATE TABLE detector_state (
            series VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            last_time TIMESTAMPTZ,
            points BIGINT NOT NULL,
            state BLOB NOT NULL,
            updated TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (series, method)
        )"""
    )


MIGRATIONS = (
    Migration(
        3,
        "detect: anomalies, detector_state",
        create_tables,
        TABLES,
        as_of=(("anomalies", "committed_at"),),  # the column comes with store migration 13
    ),
)
