"""Store tables of ``nodus config`` (migration 6).

``config_generations`` holds every version of every configuration file nodus applied:
its full content, the semantic diff from the previous one and the health-check outcome.
``config_intents`` records each switch before it happens, so that a crash is settled
on the next run by looking at what is on disk.
"""

from __future__ import annotations

from typing import Any

from nodus_cli.store.migrations import Migration

CONFIG_TABLES = ("config_generations", "config_intents")


def create_config_tables(con: Any) -> None:
    """DDL of migration 6 (runs inside the migration transaction)."""
    con.execute(
        """CREATE TABLE config_generations (
            target VARCHAR NOT NULL,      -- absolute path as the user names it
            generation INTEGER NOT NULL,  -- 0 is the content found before the first apply
            time TIMESTAMPTZ NOT NULL,    -- when this content came in force
            "user" VARCHAR,
            host VARCHAR,
            source VARCHAR NOT NULL,      -- baseline, external, apply, set, rollback, restore
            status VARCHAR NOT NULL,      -- pending, committed, abandoned
            sha256 VARCHAR NOT NULL,
            size BIGINT NOT NULL,
            content BLOB NOT NULL,
            parent INTEGER,               -- the generation this one replaced
            diff JSON,                    -- semantic changes from the parent
            check_result JSON,            -- health check: command, outcome, exit code, output
            real_path VARCHAR             -- the file written (TARGET may be a symlink)
        )"""
    )
    con.execute("CREATE SEQUENCE config_intent_id_seq START 1")
    con.execute(
        """CREATE TABLE config_intents (
            id BIGINT DEFAULT nextval('config_intent_id_seq'),
            target VARCHAR NOT NULL,
            generation INTEGER NOT NULL,  -- the generation this switch makes current
            real_path VARCHAR NOT NULL,
            old_sha256 VARCHAR NOT NULL,
            new_sha256 VARCHAR NOT NULL,
            pid INTEGER,
            host VARCHAR,
            started TIMESTAMPTZ NOT NULL,
            settled TIMESTAMPTZ,
            outcome VARCHAR               -- committed or abandoned, once settled
        )"""
    )


MIGRATIONS = (
    Migration(
        6,
        "config: config_generations, config_intents",
        create_config_tables,
        CONFIG_TABLES,
        as_of=(("config_generations", "time"),),
    ),
)
