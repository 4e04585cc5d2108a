"""The live table metadata (store/schema.py) matches what the migrations build, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from store.engine import make_engine
from store.migrations import migrate
from store.schema import metadata

# Spellings of one type: PostgreSQL's FLOAT is DOUBLE PRECISION and reflects as such.
SAME_TYPE = {"FLOAT": "DOUBLE PRECISION"}


def type_name(column_type: Any, dialect: Any) -> str:
    name: str = column_type.compile(dialect=dialect)
    return SAME_TYPE.get(name, name)


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
                column["name"]: (type_name(column["type"], dialect), column["nullable"])
                for column in inspector.get_columns(name)
            },
            "primary_key": sorted(inspector.get_pk_constraint(name)["constrained_columns"]),
            "unique": sorted(tuple(item["column_names"]) for item in inspector.get_unique_constraints(name)),
            "indexes": sorted(
                (tuple(item["column_names"]), bool(item["unique"]))
                for item in inspector.get_indexes(name)
                if not item.get("duplicates_constraint")  # PostgreSQL lists a unique constraint's index too
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
                column.name: (type_name(column.type, dialect), column.nullable and not column.primary_key)
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


def test_live_metadata_matches_the_migrated_schema(database_url: str) -> None:
    migrated = describe_database(database_url)
    live = describe_metadata(database_url)
    assert sorted(live) == sorted(migrated)
    for name in live:
        assert live[name] == migrated[name], name
