"""Room.sent_name: the name a room's latest POST /rooms carried, and one name in flight at a time.

After an unknown outcome the room is looked up at Pagecall by the name it was
sent with, not by its current one (the site may have renamed it meanwhile).
A partial unique index (sent_name where sync_state = 'creating') makes the
rule "one room of a given name in flight" hold when two workers claim
namesakes at the same moment, which the claim's NOT EXISTS alone does not
under READ COMMITTED.

Rooms in flight when this runs get their current name as sent_name, the name
their lookup used until now; of several in flight under one name, only the
first gets it (the others keep NULL, and their lookup falls back to the name).
On PostgreSQL the claim function of migration 0007 is replaced by one that
records sent_name and checks namesakes by it; reversing restores 0007's.
"""

from importlib import import_module

from django.db import migrations, models

CLAIM = r"""
CREATE OR REPLACE FUNCTION django_pagecall_claim_room(
    p_room_id bigint,
    p_now timestamptz,
    p_lease timestamptz,
    p_max_attempts integer
) RETURNS TABLE (o_room django_pagecall_room, o_member django_pagecall_member)
LANGUAGE plpgsql
AS $function$
BEGIN
    RETURN QUERY
    WITH claimed AS (
        UPDATE django_pagecall_room r
           SET sync_state = 'creating', sync_attempts = r.sync_attempts + 1,
               attempt_started_at = p_now, lease_until = p_lease, sent_name = r.name
         WHERE r.id = p_room_id AND r.sync_state = 'pending' AND r.sync_attempts < p_max_attempts
           -- One room of a given name in flight at a time (see sync/rooms.py, _claim); the
           -- unique index pagecall_room_one_name_in_flight refuses the claim that loses a race.
           AND NOT EXISTS (
               SELECT 1 FROM django_pagecall_room namesake
                WHERE namesake.sent_name = r.name AND namesake.sync_state = 'creating'
                  AND namesake.id <> r.id)
        RETURNING r.*
    )
    SELECT ROW(c.*)::django_pagecall_room, m
      FROM claimed c
      LEFT JOIN django_pagecall_member m ON m.room_id = c.id AND NOT m.is_blocked
     ORDER BY m.id;
END
$function$;
"""


def fill_sent_names(apps, schema_editor):  # type: ignore[no-untyped-def]
    Room = apps.get_model("django_pagecall", "Room")
    db = schema_editor.connection.alias
    seen = set()
    for pk, name in (
        Room.objects.using(db).filter(sync_state="creating").order_by("pk").values_list("pk", "name")
    ):
        if name not in seen:
            seen.add(name)
            Room.objects.using(db).filter(pk=pk).update(sent_name=name)


def replace_claim(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CLAIM, params=None)


def restore_claim(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        # 0007 creates all three functions with CREATE OR REPLACE: running it again puts its
        # claim back and leaves the other two as they are.
        schema_editor.execute(
            import_module("django_pagecall.migrations.0007_room_creation_functions").CREATE,
            params=None,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("django_pagecall", "0009_admin_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="sent_name",
            field=models.CharField(
                blank=True, editable=False, max_length=255, null=True, verbose_name="name sent"
            ),
        ),
        migrations.RunPython(fill_sent_names, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.UniqueConstraint(
                condition=models.Q(("sync_state", "creating")),
                fields=("sent_name",),
                name="pagecall_room_one_name_in_flight",
            ),
        ),
        migrations.RunPython(replace_claim, restore_claim, elidable=False),
    ]
