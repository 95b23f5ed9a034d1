"""Set-based upserts. On PostgreSQL: COPY into a temporary table, then one INSERT … ON CONFLICT DO UPDATE
that skips rows whose values did not change. Elsewhere (SQLite, the embedded default): Django's
``bulk_create(update_conflicts=True)``.

Django's bulk_create spends most of its time compiling per-value SQL parameters (about 20 µs a row for a
20-column model); COPY streams the rows and lets PostgreSQL do the merge, which keeps a 100 000-patient
feed within seconds (SPEC §11).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model
from django.db.models.expressions import RawSQL

SQLITE_BATCH = 2000


def bulk_upsert(
    model: type[Model],
    rows: Sequence[tuple[Any, ...]],
    *,
    columns: Sequence[str],
    conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``, given as field attnames) or update on conflict.

    ``conflict`` names the fields of a unique constraint; ``update`` the fields to overwrite on conflict.
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        _upsert_postgresql(model, rows, columns, conflict, update)
        return
    fields = _concrete_fields(model, columns)
    for start in range(0, len(rows), SQLITE_BATCH):
        objs = [model(**dict(zip(columns, row, strict=True))) for row in rows[start : start + SQLITE_BATCH]]
        model._default_manager.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=list(conflict),
            update_fields=[f.name for f in fields if f.name in update or f.attname in update],
        )


def _concrete_fields(model: type[Model], names: Iterable[str]) -> list[Field[Any, Any]]:
    """The fields of ``model`` named (or attnamed) ``names``: columns of its table, not relations to it."""
    fields = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, Field):
            raise ValueError(f"{model.__name__}.{name} is not a concrete field")
        fields.append(field)
    return fields


_counter = itertools.count()


def _upsert_postgresql(
    model: type[Model],
    rows: Sequence[tuple[Any, ...]],
    columns: Sequence[str],
    conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    quoted = ", ".join(connection.ops.quote_name(f.column) for f in _concrete_fields(model, columns))
    conflict_cols = ", ".join(connection.ops.quote_name(f.column) for f in _concrete_fields(model, conflict))
    update_cols = [connection.ops.quote_name(f.column) for f in _concrete_fields(model, update)]
    temp = connection.ops.quote_name(f"upsert_{meta.db_table}_{next(_counter)}")
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in update_cols)
    current = ", ".join(f"{table}.{c}" for c in update_cols)
    incoming = ", ".join(f"EXCLUDED.{c}" for c in update_cols)
    # Every identifier below is a quoted model table or column name, never user input.
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {quoted} FROM {table} WITH NO DATA")  # noqa: S608
        with cursor.cursor.copy(f"COPY {temp} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM {temp} "  # noqa: S608
            f"ON CONFLICT ({conflict_cols}) DO UPDATE SET {assignments} "
            f"WHERE ({current}) IS DISTINCT FROM ({incoming})"
        )
        cursor.execute(f"DROP TABLE {temp}")


def bulk_insert(model: type[Model], rows: Iterable[Sequence[Any]], *, columns: Sequence[str]) -> None:
    """Append ``rows`` (tuples of Python values in the order of ``columns``, given as field attnames).

    PostgreSQL: one ``COPY … FROM STDIN`` straight into the table, the rows streamed as they are produced.
    Elsewhere: ``executemany`` with each value prepared by its field. JSON values are Python objects; a row
    that repeats the previous row's object (the same ``dict``) reuses its encoding.
    """
    meta = model._meta
    fields = _concrete_fields(model, columns)
    if connection.vendor == "postgresql":
        json_columns = [i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
        copy_rows(meta.db_table, [f.column for f in fields], _json_encoded(rows, json_columns))
        return
    prepared = (
        tuple(f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)) for row in rows
    )
    copy_rows(meta.db_table, [f.column for f in fields], prepared)


def ids_in(ids: Collection[int]) -> Any:
    """The right-hand side of an ``__in`` filter on a batch of ids. On PostgreSQL one array parameter
    (``IN (SELECT unnest(%s))``): a list of 10 000 ids is 10 000 placeholders that Django prepares and psycopg
    parses one by one (about 0.2 s per query under cProfile). Elsewhere the ids themselves."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (list(ids),))
    return list(ids)


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Append ``rows`` to ``table`` (a model's table or a temporary one): COPY on PostgreSQL, batched
    ``executemany`` elsewhere. Values must already be in the database's terms."""
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    name = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(columns))
        statement = f"INSERT INTO {name} ({quoted}) VALUES ({marks})"  # noqa: S608 (quoted identifiers)
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= SQLITE_BATCH:
                cursor.executemany(statement, batch)
                batch = []
        if batch:
            cursor.executemany(statement, batch)


def _json_encoded(rows: Iterable[Sequence[Any]], json_columns: list[int]) -> Iterator[Sequence[Any]]:
    if not json_columns:
        yield from rows
        return
    last: dict[int, tuple[Any, str]] = {}
    for row in rows:
        out = list(row)
        for index in json_columns:
            value = out[index]
            if value is None:
                continue
            if not value and isinstance(value, dict):  # most rows' postal address, between others
                out[index] = "{}"
                continue
            cached = last.get(index)
            if cached is not None and cached[0] is value:
                out[index] = cached[1]
            else:
                encoded = json.dumps(value)
                last[index] = (value, encoded)
                out[index] = encoded
        yield out
