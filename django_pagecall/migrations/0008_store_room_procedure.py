"""The PostgreSQL procedure that stores a created room and then looks for its follow-ups.

``django_pagecall_store_room_and_follow_up`` calls the two functions of
migration 0007 that a room's creation runs after Pagecall's answer, with a
``COMMIT`` between them: the room stored (``django_pagecall_store_room``) and
committed, then, in a transaction of its own that sees everything committed
until then, the webhooks waiting for the room and its members still to send
(``django_pagecall_room_follow_ups``). That is what the two statements did,
in the same order and with the same transactions, in one round trip: on the
machines of BENCHMARKS.md a round trip costs more CPU than either function.

A procedure can commit only when it is called outside a transaction block,
and it returns scalars (whether the claim still held, whether a rename or
termination is still to be sent, whether webhooks wait, and the members' ids
and states), not the row as stored. So sync/rooms.py calls it outside a
transaction when ``room_created`` has no receivers, and sends the two
statements otherwise.

The functions of 0007 stay: the procedure calls them, and the nested path
and workers of the release before this one call them directly.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE PROCEDURE django_pagecall_store_room_and_follow_up(
    p_room_id bigint,
    p_lease timestamptz,
    p_pagecall_id text,
    p_name text,
    p_now timestamptz,
    p_application_id text,
    p_layout text,
    p_thumbnail_url text,
    p_meeting_time integer,
    p_started_at timestamptz,
    p_terminated_at timestamptz,
    p_pagecall_created_at timestamptz,
    p_pagecall_updated_at timestamptz,
    p_member_ids bigint[],
    INOUT o_stored boolean DEFAULT NULL,
    INOUT o_needs_update boolean DEFAULT NULL,
    INOUT o_deliveries_waiting boolean DEFAULT NULL,
    INOUT o_member_ids bigint[] DEFAULT NULL,
    INOUT o_member_states text[] DEFAULT NULL
)
LANGUAGE plpgsql
AS $procedure$
BEGIN
    SELECT s.needs_update INTO o_needs_update
      FROM django_pagecall_store_room(
               p_room_id, p_lease, p_pagecall_id, p_name, p_now, p_application_id, p_layout,
               p_thumbnail_url, p_meeting_time, p_started_at, p_terminated_at,
               p_pagecall_created_at, p_pagecall_updated_at, p_member_ids) s;
    o_stored := FOUND;
    IF NOT o_stored THEN
        RETURN;  -- the claim was lost: nothing written, nothing to follow up
    END IF;
    COMMIT;
    -- A new transaction, and a snapshot taken after the commit: a member or a webhook that
    -- did not see the Pagecall id was committed before it, and is found here.
    SELECT bool_or(f.o_deliveries_waiting),
           array_agg(f.o_member_id ORDER BY f.o_member_id) FILTER (WHERE f.o_member_id IS NOT NULL),
           array_agg(f.o_sync_state ORDER BY f.o_member_id) FILTER (WHERE f.o_member_id IS NOT NULL)
      INTO o_deliveries_waiting, o_member_ids, o_member_states
      FROM django_pagecall_room_follow_ups(p_room_id) f;
END
$procedure$;
"""

DROP = """
DROP PROCEDURE IF EXISTS django_pagecall_store_room_and_follow_up(
    bigint, timestamptz, text, text, timestamptz, text, text, text, integer, timestamptz,
    timestamptz, timestamptz, timestamptz, bigint[], boolean, boolean, boolean, bigint[], text[]
);
"""


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("django_pagecall", "0007_room_creation_functions"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
