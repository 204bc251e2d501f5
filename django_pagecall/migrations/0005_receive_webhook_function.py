"""The PostgreSQL function that receives a webhook in one statement (see webhooks/queries.py).

Other backends get nothing here: they take the portable path. The function
is plain SQL inside PL/pgSQL, which PostgreSQL plans once per connection and
keeps; the same work sent as one large ``WITH`` statement is planned again on
every call, and on a loaded machine the planning cost more than the writes.

What it does, in one transaction (the caller's, or the statement's own):

1. Read the room. Gone, without a Pagecall id, or another Pagecall room than
   the payload's ``roomId``: return that outcome and write nothing (the
   caller handles those cases, which need more than one statement).
2. The session: insert it, or write the action's column only when it is
   empty or older than the event (the de-duplication, see webhooks/effects.py).
3. The room's counters, only when the session changed and the event is not
   older than the stored counters.
4. The delivery, stored as processed (applied or duplicate) with its body and
   masked headers, in the same transaction as its effects: a delivery is never
   stored without its effects nor its effects without it. If any of it fails,
   nothing is written and the caller stores the delivery as failed.

It returns the outcome, the delivery's id, whether the counters moved, and
the session (null for a duplicate) and room rows as stored.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION django_pagecall_receive_webhook(
    p_room_id bigint,
    p_claimed_room text,
    p_action text,
    p_joined boolean,
    p_session_id text,
    p_member_id text,
    p_user_id text,
    p_sessions_count integer,
    p_members_count integer,
    p_at timestamptz,
    p_headers jsonb,
    p_body text,
    p_remote_addr inet,
    p_now timestamptz,
    OUT outcome text,
    OUT delivery_id bigint,
    OUT counters_updated boolean,
    OUT session django_pagecall_session,
    OUT room django_pagecall_room
)
LANGUAGE plpgsql
AS $function$
DECLARE
    v_room django_pagecall_room%ROWTYPE;
    v_updated django_pagecall_room%ROWTYPE;
    v_session django_pagecall_session%ROWTYPE;
    v_member bigint;
    v_changed boolean;
    v_counters boolean := false;
    v_delivery bigint;
BEGIN
    SELECT * INTO v_room FROM django_pagecall_room WHERE id = p_room_id;
    IF NOT FOUND THEN
        outcome := 'room_gone';
        counters_updated := false;
        RETURN;
    ELSIF v_room.pagecall_id IS NULL THEN
        outcome := 'waiting';
        counters_updated := false;
        room := v_room;
        RETURN;
    ELSIF v_room.pagecall_id <> p_claimed_room THEN
        outcome := 'room_mismatch';
        counters_updated := false;
        room := v_room;
        RETURN;
    END IF;

    -- The member by Pagecall's member id, else by user id (members created with the room
    -- have no Pagecall member id here). A NULL user id matches no member.
    SELECT m.id INTO v_member FROM django_pagecall_member m
     WHERE m.room_id = p_room_id AND (m.pagecall_id = p_member_id OR m.user_id = NULLIF(p_user_id, ''))
     ORDER BY CASE WHEN m.pagecall_id = p_member_id THEN 0 ELSE 1 END, m.id
     LIMIT 1;

    -- The two session statements differ only in the column (joined_at or left_at): static
    -- statements keep their plans, where one built with format() would be planned per call.
    IF p_joined THEN
        INSERT INTO django_pagecall_session AS s
            (room_id, session_id, member_id, user_id, room_member_id, joined_at, source, created_at, updated_at)
        VALUES (p_room_id, p_session_id, p_member_id, p_user_id, v_member, p_at, 'webhook', p_now, p_now)
        ON CONFLICT (session_id) DO UPDATE SET
            joined_at = excluded.joined_at,
            updated_at = excluded.updated_at,
            member_id = CASE WHEN s.member_id = '' THEN excluded.member_id ELSE s.member_id END,
            user_id = CASE WHEN s.user_id = '' THEN excluded.user_id ELSE s.user_id END,
            room_member_id = COALESCE(s.room_member_id, excluded.room_member_id)
        WHERE s.room_id = excluded.room_id AND (s.joined_at IS NULL OR s.joined_at < excluded.joined_at)
        RETURNING s.* INTO v_session;
    ELSE
        INSERT INTO django_pagecall_session AS s
            (room_id, session_id, member_id, user_id, room_member_id, left_at, source, created_at, updated_at)
        VALUES (p_room_id, p_session_id, p_member_id, p_user_id, v_member, p_at, 'webhook', p_now, p_now)
        ON CONFLICT (session_id) DO UPDATE SET
            left_at = excluded.left_at,
            updated_at = excluded.updated_at,
            member_id = CASE WHEN s.member_id = '' THEN excluded.member_id ELSE s.member_id END,
            user_id = CASE WHEN s.user_id = '' THEN excluded.user_id ELSE s.user_id END,
            room_member_id = COALESCE(s.room_member_id, excluded.room_member_id)
        WHERE s.room_id = excluded.room_id AND (s.left_at IS NULL OR s.left_at < excluded.left_at)
        RETURNING s.* INTO v_session;
    END IF;
    v_changed := FOUND;

    IF v_changed THEN
        UPDATE django_pagecall_room r
           SET sessions_count = p_sessions_count, members_count = p_members_count, counters_at = p_at
         WHERE r.id = p_room_id AND (r.counters_at IS NULL OR r.counters_at <= p_at)
        RETURNING r.* INTO v_updated;
        v_counters := FOUND;  -- (no row leaves v_updated all nulls: v_room keeps what was read)
        IF v_counters THEN
            v_room := v_updated;
        END IF;
    END IF;

    INSERT INTO django_pagecall_webhookdelivery
        (room_id, action, session_id, event_at, headers, body, remote_addr, received_at,
         state, result, error, traceback, processed_at, attempts)
    VALUES (p_room_id, p_action, p_session_id, p_at, p_headers, p_body, p_remote_addr, p_now,
            'processed', CASE WHEN v_changed THEN 'applied' ELSE 'duplicate' END, '', '', p_now, 1)
    RETURNING id INTO v_delivery;

    -- One row, in the OUT parameters (a RETURNS TABLE function would build a tuplestore).
    outcome := CASE WHEN v_changed THEN 'applied' ELSE 'duplicate' END;
    delivery_id := v_delivery;
    counters_updated := v_counters;
    IF v_changed THEN
        session := v_session;
    END IF;
    room := v_room;
END
$function$;
"""

DROP = """
DROP FUNCTION IF EXISTS django_pagecall_receive_webhook(
    bigint, text, text, boolean, text, text, text, integer, integer, timestamptz, jsonb, text,
    inet, timestamptz
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
        ("django_pagecall", "0004_pendingaction"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
