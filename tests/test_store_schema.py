"""The live table metadata (store/schema.py) matches what the migrations build on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from store.engine import make_engine
from store.migrations import migrate
from store.schema import metadata


def describe_database(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    migrate(engine)
    inspector = inspect(engine)
    dialect = engine.dialect
    tables: dict[str, Any] = {}
    for name in inspector.get_table_names():
        if name == "schema_migrations":
            continue
        tables[name] = {
            "columns": {
                column["name"]: (column["type"].compile(dialect=dialect), column["nullable"])
                for column in inspector.get_columns(name)
            },
            "primary_key": sorted(inspector.get_pk_constraint(name)["constrained_columns"]),
            "unique": sorted(tuple(item["column_names"]) for item in inspector.get_unique_constraints(name)),
            "indexes": sorted(
                (tuple(item["column_names"]), bool(item["unique"])) for item in inspector.get_indexes(name)
            ),
            "foreign_keys": sorted(
                (tuple(item["constrained_columns"]), item["referred_table"], tuple(item["referred_columns"]))
                for item in inspector.get_foreign_keys(name)
            ),
        }
    engine.dispose()
    return tables


def describe_metadata(url: str) -> dict[str, Any]:
    dialect = make_engine(url).dialect
    tables: dict[str, Any] = {}
    for table in metadata.sorted_tables:
        tables[table.name] = {
            "columns": {
                column.name: (column.type.compile(dialect=dialect), column.nullable and not column.primary_key)
                for column in table.columns
            },
            "primary_key": sorted(column.name for column in table.primary_key.columns),
            "unique": sorted((column.name,) for column in table.columns if column.unique),
            "indexes": sorted(
                (tuple(column.name for column in index.columns), bool(index.unique)) for index in table.indexes
            ),
            "foreign_keys": sorted(
                ((key.parent.name,), key.column.table.name, (key.column.name,)) for key in table.foreign_keys
            ),
        }
    return tables


def test_live_metadata_matches_the_migrated_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    migrated = describe_database(url)
    live = describe_metadata(url)
    assert sorted(live) == sorted(migrated)
    for name in live:
        assert live[name] == migrated[name], name
