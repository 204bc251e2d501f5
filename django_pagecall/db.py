"""What the PostgreSQL statements of the hot paths (:mod:`.webhooks.queries`, :mod:`.sync.queries`)
share: how they get a cursor, how they nest in a caller's transaction, and how rows become
model instances."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import Any

from django.db import connections, transaction


@cache
def field_names(model: Any, only: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The model's concrete fields' attnames, in the order ``Model.from_db`` expects; with
    ``only`` (attnames), just those, in the model's order (``from_db`` defers the rest)."""
    return tuple(f.attname for f in _fields(model, only))


def _fields(model: Any, only: tuple[str, ...] | None) -> list[Any]:
    fields = list(model._meta.concrete_fields)
    if only is None:
        return fields
    unknown = set(only) - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    return [f for f in fields if f.attname in only]


def select_list(
    model: Any, using: str, source: str = "", only: tuple[str, ...] | None = None
) -> str:
    """The model's concrete columns (or those ``only`` names), quoted, in the order of
    :func:`field_names`, each read from ``source`` when given: a table alias (``o``), or a
    row-typed value (``(o.room)``, a function's result: spreading it by name, not ``.*``, keeps
    the model's order whatever the table's)."""
    q = connections[using].ops.quote_name
    prefix = f"{source}." if source else ""
    return ", ".join(f"{prefix}{q(f.column or f.attname)}" for f in _fields(model, only))


def savepoint_if_nested(using: str) -> AbstractContextManager[Any]:
    """Alone, a statement is atomic and commits by itself (no BEGIN/COMMIT round trips).
    Inside a caller's transaction it gets a savepoint, so that a failure can still be
    recorded and the caller's transaction goes on."""
    if connections[using].in_atomic_block:
        return transaction.atomic(using=using)
    return nullcontext()


def server_binding_cursor(using: str) -> Any:
    """A cursor that sends its parameters apart from the statement (psycopg's ``Cursor``), in
    Django's wrapper (error translation, execute wrappers, query logging).

    Django's default, client-side binding, quotes every parameter into the text in Python,
    which on the hot paths cost more than the rest of the call, and PostgreSQL then parses
    the values back out of the text. The statement is not prepared unless the site's
    ``OPTIONS["prepare_threshold"]`` says so (README): Django's default, None, keeps a
    transaction-mode pooler working; with a threshold, psycopg prepares each of these
    statements once it has run that many times on the connection. With psycopg2,
    which binds on the client whatever the cursor, this is the usual cursor.
    """
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    connection = connections[using]
    if not is_psycopg3:
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    cursor: Any = psycopg.Cursor(connection.connection)  # the stubs want a wrapper; Django doesn't
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)
