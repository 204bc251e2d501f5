"""The PostgreSQL functions behind a room's creation (see sync/queries.py).

Each holds one of the statements of django_pagecall.sync.queries, unchanged in
what it does: PL/pgSQL plans a statement once per connection and keeps the
plan, where the same statement sent from Python is parsed and planned on every
call; for these three, planning cost more than running them. Other backends
get nothing here: they take the ORM path. The state values ('pending',
'creating', 'synced', 'waiting') are the stored values of SyncState and
DeliveryState.

* django_pagecall_claim_room: the compare-and-set that takes a pending room with
  attempts left and no namesake in flight; the room as claimed, with each of
  its unblocked members (one row per member, or one row with a null member).
* django_pagecall_store_room: Pagecall's answer stored on a room still claimed
  with the given lease, and the members sent with it marked synced; the room
  as stored, or no row when the claim was lost.
* django_pagecall_room_follow_ups: once that is committed, whether webhooks
  wait for the room, and its members still to send (pending, or synced with a
  change not sent).
"""

from django.db import migrations

CREATE = r"""
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
               attempt_started_at = p_now, lease_until = p_lease
         WHERE r.id = p_room_id AND r.sync_state = 'pending' AND r.sync_attempts < p_max_attempts
           -- One room of a given name in flight at a time (see sync/rooms.py, _claim).
           AND NOT EXISTS (
               SELECT 1 FROM django_pagecall_room namesake
                WHERE namesake.name = r.name AND namesake.sync_state = 'creating'
                  AND namesake.id <> r.id)
        RETURNING r.*
    )
    SELECT ROW(c.*)::django_pagecall_room, m
      FROM claimed c
      LEFT JOIN django_pagecall_member m ON m.room_id = c.id AND NOT m.is_blocked
     ORDER BY m.id;
END
$function$;

CREATE OR REPLACE FUNCTION django_pagecall_store_room(
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
    p_member_ids bigint[]
) RETURNS SETOF django_pagecall_room
LANGUAGE plpgsql
AS $function$
BEGIN
    RETURN QUERY
    WITH stored AS (
        UPDATE django_pagecall_room r
           SET pagecall_id = p_pagecall_id, sync_state = 'synced', synced_at = p_now,
               lease_until = NULL, sync_error = '',
               -- Renamed or terminated while it was being created: yet to be sent.
               needs_update = (r.name IS DISTINCT FROM p_name OR r.terminate_requested),
               application_id = p_application_id, layout = p_layout,
               thumbnail_url = p_thumbnail_url, meeting_time = p_meeting_time,
               started_at = p_started_at, terminated_at = p_terminated_at,
               pagecall_created_at = p_pagecall_created_at,
               pagecall_updated_at = p_pagecall_updated_at
         WHERE r.id = p_room_id AND r.sync_state = 'creating' AND r.lease_until = p_lease
        RETURNING r.*
    ), sent AS (
        UPDATE django_pagecall_member m
           SET sync_state = 'synced', synced_at = p_now, sync_error = ''
         WHERE m.id = ANY(p_member_ids) AND m.room_id = p_room_id
           AND m.sync_state = 'pending' AND EXISTS (SELECT 1 FROM stored)
    )
    -- Every data-modifying WITH runs to completion, whether or not the SELECT reads it.
    SELECT * FROM stored;
END
$function$;

CREATE OR REPLACE FUNCTION django_pagecall_room_follow_ups(p_room_id bigint)
RETURNS TABLE (o_deliveries_waiting boolean, o_member_id bigint, o_sync_state text)
LANGUAGE plpgsql
AS $function$
BEGIN
    RETURN QUERY
    SELECT EXISTS (
               SELECT 1 FROM django_pagecall_webhookdelivery d
                WHERE d.room_id = p_room_id AND d.state = 'waiting'),
           m.id, m.sync_state::text
      FROM (SELECT 1) one
      LEFT JOIN django_pagecall_member m
        ON m.room_id = p_room_id
       AND (m.sync_state = 'pending' OR (m.sync_state = 'synced' AND m.needs_update))
     ORDER BY m.id;
END
$function$;
"""

DROP = """
DROP FUNCTION IF EXISTS django_pagecall_claim_room(bigint, timestamptz, timestamptz, integer);
DROP FUNCTION IF EXISTS django_pagecall_store_room(
    bigint, timestamptz, text, text, timestamptz, text, text, text, integer, timestamptz,
    timestamptz, timestamptz, timestamptz, bigint[]
);
DROP FUNCTION IF EXISTS django_pagecall_room_follow_ups(bigint);
"""


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("django_pagecall", "0006_session_indexes"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
