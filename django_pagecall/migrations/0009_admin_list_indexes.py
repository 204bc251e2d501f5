"""Indexes for the admin's delivery and session lists, and a partial index for replays.

* ``pagecall_delivery_received_idx`` (``received_at, id``) and
  ``pagecall_session_joined_idx`` (``joined_at, id``): the two lists show the
  newest first, and their date hierarchies start from the first and last dates;
  without these, every page sorted and scanned the whole table.
* ``pagecall_delivery_state_idx`` becomes partial, on deliveries that are not
  ``processed``: that is all the replay command and the "to replay" filter
  read, and nearly every delivery is processed, so a webhook now writes no
  entry there. The webhook path writes one index entry more per session row
  and none more per delivery.

On PostgreSQL the indexes are built and dropped ``CONCURRENTLY``, outside a
transaction: deliveries and sessions are the tables that grow without bound,
and a plain ``CREATE INDEX`` would hold back every webhook insert until it was
built (Pagecall does not retry a webhook that times out). Each step is skipped
when the database is already past it, and an index left invalid by a failed
build is built again, so a migration interrupted half-way can be run again.
"""

from django.db import migrations, models

DELIVERY, SESSION = "webhookdelivery", "session"
OLD_STATE = models.Index(fields=["state", "received_at"], name="pagecall_delivery_state_idx")
NEW_STATE = models.Index(
    fields=["state", "received_at"],
    name="pagecall_delivery_state_idx",
    condition=~models.Q(state="processed"),
)
RECEIVED = models.Index(fields=["received_at", "id"], name="pagecall_delivery_received_idx")
JOINED = models.Index(fields=["joined_at", "id"], name="pagecall_session_joined_idx")


def _state(schema_editor, model, name):  # type: ignore[no-untyped-def]
    """None when there is no index ``name``; on PostgreSQL, whether it is partial, or "invalid"
    for what a failed ``CREATE INDEX CONCURRENTLY`` leaves; elsewhere "unknown". The two
    strings match nothing, so that the index is dropped and built again (SQLite's are small)."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT i.indisvalid, i.indpred IS NOT NULL FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
                [name],
            )
            row = cursor.fetchone()
            if row is None:
                return None
            valid, partial = row
            return partial if valid else "invalid"
        existing = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return "unknown" if name in existing else None


def _run(apps, schema_editor, steps):  # type: ignore[no-untyped-def]
    options = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    for model_name, index, wanted in steps:
        model = apps.get_model("django_pagecall", model_name)
        state = _state(schema_editor, model, index.name)
        if wanted and state is not None and state == (index.condition is not None):
            continue  # already there, as wanted
        if state is not None:
            schema_editor.remove_index(model, index, **options)
        if wanted:
            schema_editor.add_index(model, index, **options)


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _run(
        apps,
        schema_editor,
        [(DELIVERY, RECEIVED, True), (SESSION, JOINED, True), (DELIVERY, NEW_STATE, True)],
    )


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _run(
        apps,
        schema_editor,
        [(DELIVERY, OLD_STATE, True), (SESSION, JOINED, False), (DELIVERY, RECEIVED, False)],
    )


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("django_pagecall", "0008_store_room_procedure"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
            state_operations=[
                migrations.RemoveIndex(model_name=DELIVERY, name="pagecall_delivery_state_idx"),
                migrations.AddIndex(model_name=SESSION, index=JOINED),
                migrations.AddIndex(model_name=DELIVERY, index=RECEIVED),
                migrations.AddIndex(model_name=DELIVERY, index=NEW_STATE),
            ],
        ),
    ]
