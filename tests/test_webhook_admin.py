"""The admin for sessions and webhook deliveries, and what it offers the room admin.

The module is its own URLconf, with a room admin built only from what
``django_pagecall.admin.sessions`` gives the real one, so these tests do not depend on it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.test import Client
from django.urls import include, path
from django.utils import timezone

from django_pagecall.admin.sessions import (
    SessionAdmin,
    SessionInline,
    format_duration,
    online_now,
    with_online,
)
from django_pagecall.admin.webhooks import WebhookDeliveryAdmin
from django_pagecall.emulator import Emulator
from django_pagecall.models import DeliveryResult, DeliveryState, Room, Session, WebhookDelivery
from django_pagecall.webhooks import processing
from django_pagecall.webhooks.auth import SECRET_HEADER
from tests.test_webhook_support import (
    PagecallRoom,
    failing_processing,
    make_room,
    post,
    session_id_of,
)


# Only what django_pagecall.admin.sessions gives the real room admin: the inline, with_online
# and online_now.
class RoomAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    inlines = [SessionInline]
    list_display = ["name", online_now]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return with_online(super().get_queryset(request))


site = admin.AdminSite(name="admin")
site.register(Room, RoomAdmin)
site.register(Session, SessionAdmin)
site.register(WebhookDelivery, WebhookDeliveryAdmin)

urlpatterns = [
    path("admin/", site.urls),
    path("pagecall/", include("django_pagecall.urls")),
]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

SESSIONS = "/admin/django_pagecall/session/"
DELIVERIES = "/admin/django_pagecall/webhookdelivery/"


@pytest.fixture
def busy_room(pagecall_emulator: Emulator, client: Client) -> PagecallRoom:
    """Alice left, Bob and an anonymous guest are still in."""
    room = make_room(pagecall_emulator, name="Busy")
    alice = room.join("alice")
    for body in (alice, room.join("bob"), room.join(), room.leave(session_id_of(alice))):
        assert post(client, body, room.headers).status_code == 200
    return room


def listed(html: str) -> set[str]:
    """The session ids of the rows of a session list (each row links to its session's page)."""
    pks = {int(pk) for pk in re.findall(rf"{SESSIONS}(\d+)/change/", html)}
    return set(Session.objects.filter(pk__in=pks).values_list("session_id", flat=True))


def test_the_app_admin_registers_sessions_and_deliveries() -> None:
    from django.contrib.admin import site as default_site

    import django_pagecall.admin  # noqa: F401

    assert isinstance(default_site._registry[Session], SessionAdmin)
    assert isinstance(default_site._registry[WebhookDelivery], WebhookDeliveryAdmin)


def test_session_list_filters_by_room_user_and_online(
    busy_room: PagecallRoom, admin_client: Client, pagecall_emulator: Emulator
) -> None:
    other = make_room(pagecall_emulator, name="Quiet")
    assert post(admin_client, other.join("carol"), other.headers).status_code == 200
    ids = {s.user_id or "anon": s.session_id for s in Session.objects.all()}

    everything = admin_client.get(SESSIONS)
    assert everything.status_code == 200
    assert set(ids.values()) <= listed(everything.content.decode())

    online = admin_client.get(SESSIONS, {"online": "yes"}).content.decode()
    assert ids["alice"] not in online
    assert {ids["bob"], ids["anon"], ids["carol"]} <= listed(online)
    offline = listed(admin_client.get(SESSIONS, {"online": "no"}).content.decode())
    assert ids["alice"] in offline
    assert ids["bob"] not in offline

    bob = listed(admin_client.get(SESSIONS, {"user_id": "bob"}).content.decode())
    assert ids["bob"] in bob
    assert ids["alice"] not in bob

    in_busy = admin_client.get(SESSIONS, {"room__id__exact": busy_room.room.pk}).content.decode()
    assert ids["carol"] not in listed(in_busy)
    assert ids["alice"] in listed(in_busy)

    year = timezone.now().year
    by_year = admin_client.get(SESSIONS, {"joined_at__year": year})
    assert by_year.status_code == 200
    assert set(ids.values()) <= listed(by_year.content.decode())


def test_sessions_are_read_only(busy_room: PagecallRoom, admin_client: Client) -> None:
    session = Session.objects.get(user_id="bob")
    page = admin_client.get(f"{SESSIONS}{session.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.post(f"{SESSIONS}{session.pk}/change/", {}).status_code == 403
    assert admin_client.get(f"{SESSIONS}add/").status_code == 403


def test_the_room_page_shows_its_sessions_newest_first(
    busy_room: PagecallRoom, admin_client: Client
) -> None:
    page = admin_client.get(f"/admin/django_pagecall/room/{busy_room.room.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    newest_first = [s.session_id for s in Session.objects.order_by("-joined_at", "-pk")]
    positions = [html.index(session_id) for session_id in newest_first]
    assert positions == sorted(positions)
    assert html.count('alt="True"') >= 2  # two people still online
    assert "0:00:0" in html  # durations


def test_the_room_list_shows_who_is_online(busy_room: PagecallRoom, admin_client: Client) -> None:
    html = admin_client.get("/admin/django_pagecall/room/").content.decode()
    assert "2: bob, anonymous" in html


def test_with_online_annotates_without_a_query_per_room(
    busy_room: PagecallRoom, pagecall_emulator: Emulator, django_assert_num_queries: Any
) -> None:
    make_room(pagecall_emulator, name="Empty")
    with django_assert_num_queries(2):  # the rooms, then their online sessions
        rooms = {r.name: r for r in with_online(Room.objects.all())}
        shown = {name: online_now(room) for name, room in rooms.items()}
    assert {name: r.online_count for name, r in rooms.items()} == {"Busy": 2, "Empty": 0}  # type: ignore[attr-defined]
    assert shown == {"Busy": "2: bob, anonymous", "Empty": "-"}


def test_duration_reads_as_hours_minutes_seconds() -> None:
    assert format_duration(timedelta(hours=1, minutes=2, seconds=3.7)) == "1:02:03"
    assert format_duration(None) == "-"


def test_deliveries_list_filters_and_shows_masked_headers(
    busy_room: PagecallRoom, admin_client: Client
) -> None:
    assert post(admin_client, {"not": "a webhook"}, busy_room.headers).status_code == 400
    page = admin_client.get(DELIVERIES, {"state": DeliveryState.FAILED})
    assert page.status_code == 200
    failed = WebhookDelivery.objects.get(state=DeliveryState.FAILED)
    assert f"{DELIVERIES}{failed.pk}/change/" in page.content.decode()
    assert page.content.decode().count("/change/") == 1

    detail = admin_client.get(f"{DELIVERIES}{failed.pk}/change/").content.decode()
    assert processing.MASK in detail
    assert busy_room.headers[SECRET_HEADER] not in detail
    assert "payload" in detail  # the validation error names the missing field


def test_the_replay_action_processes_failed_deliveries(
    pagecall_emulator: Emulator, admin_client: Client
) -> None:
    room = make_room(pagecall_emulator)
    with failing_processing(), pytest.raises(DatabaseError):
        post(admin_client, room.join("alice"), room.headers)
    failed = WebhookDelivery.objects.get()
    response = admin_client.post(
        DELIVERIES,
        {"action": "replay_selected", "_selected_action": [failed.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 processed, 0 waiting, 0 failed" in response.content.decode()
    failed.refresh_from_db()
    assert failed.state == DeliveryState.PROCESSED
    assert Session.objects.count() == 1


def test_deliveries_refused_for_their_body_are_filtered_out_of_what_to_replay(
    busy_room: PagecallRoom, admin_client: Client
) -> None:
    assert post(admin_client, {"not": "a webhook"}, busy_room.headers).status_code == 400
    invalid = WebhookDelivery.objects.get(state=DeliveryState.FAILED)
    assert invalid.result == DeliveryResult.INVALID

    def shown(query: dict[str, str]) -> int:
        page = admin_client.get(DELIVERIES, query)
        assert page.status_code == 200
        return page.content.decode().count(f"{DELIVERIES}{invalid.pk}/change/")

    assert shown({"result": DeliveryResult.INVALID}) == 1
    assert shown({"to_replay": "yes"}) == 0
    assert shown({"to_replay": "no"}) == 1

    # The action replays what it is given, and says why this one fails again.
    response = admin_client.post(
        DELIVERIES, {"action": "replay_selected", "_selected_action": [invalid.pk]}, follow=True
    )
    text = response.content.decode()
    assert "0 processed, 0 waiting, 1 failed." in text
    assert "Of the failed, 1 were refused for an invalid or too large body" in text
    invalid.refresh_from_db()
    assert (invalid.state, invalid.result, invalid.attempts) == (
        DeliveryState.FAILED,
        DeliveryResult.INVALID,
        2,
    )


def test_replay_needs_the_change_permission(admin_client: Client) -> None:
    viewer = get_user_model().objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    request = HttpRequest()
    request.user = get_user_model().objects.get(pk=viewer.pk)
    model_admin = site._registry[WebhookDelivery]
    assert "replay_selected" not in model_admin.get_actions(request)
    request.user = get_user_model().objects.get(username="admin")
    assert "replay_selected" in model_admin.get_actions(request)


def test_the_admin_is_not_csrf_exempt(busy_room: PagecallRoom, admin_user: Any) -> None:
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_user)
    delivery = WebhookDelivery.objects.first()
    assert delivery is not None
    response = csrf_client.post(
        DELIVERIES, {"action": "replay_selected", "_selected_action": [delivery.pk]}
    )
    assert response.status_code == 403


def test_the_action_filter_offers_pagecall_actions_and_the_rest(
    busy_room: PagecallRoom, admin_client: Client
) -> None:
    assert post(admin_client, {"action": "roomEnded"}, busy_room.headers).status_code == 400
    other = WebhookDelivery.objects.get(result=DeliveryResult.INVALID)  # stored without action
    page = admin_client.get(DELIVERIES).content.decode()
    assert "?action=sessionJoined" in page and "?action=%28other%29" in page

    def shown(action: str) -> set[int]:
        page = admin_client.get(DELIVERIES, {"action": action})
        assert page.status_code == 200
        return {int(pk) for pk in re.findall(rf"{DELIVERIES}(\d+)/change/", page.content.decode())}

    joined = set(
        WebhookDelivery.objects.filter(action="sessionJoined").values_list("pk", flat=True)
    )
    assert len(joined) == 3
    assert shown("sessionJoined") == joined
    assert shown("(other)") == {other.pk}


def test_the_room_and_user_filters_offer_the_latest_sessions_and_keep_the_choice(
    busy_room: PagecallRoom,
    admin_client: Client,
    pagecall_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import django_pagecall.admin.sessions as sessions_admin

    later = make_room(pagecall_emulator, name="Later")
    assert post(admin_client, later.join("carol"), later.headers).status_code == 200
    monkeypatch.setattr(sessions_admin, "RECENT_SESSIONS", 1)  # carol's session alone

    page = admin_client.get(SESSIONS).content.decode()
    assert f"?room__id__exact={later.room.pk}" in page and "?user_id=carol" in page
    assert f"?room__id__exact={busy_room.room.pk}" not in page and "?user_id=bob" not in page

    # An older choice still filters, and is shown as chosen.
    chosen = admin_client.get(SESSIONS, {"room__id__exact": busy_room.room.pk, "user_id": "bob"})
    text = chosen.content.decode()
    assert f"?room__id__exact={busy_room.room.pk}&amp;user_id=bob" in text
    assert re.search(r'<li class="selected">\s*<a href="[^"]*">Busy</a>', text)  # by its name
    bob = Session.objects.get(user_id="bob")
    assert listed(text) == {bob.session_id}


def _plans_of_the_limited_queries(
    admin_client: Client, url: str, table: str
) -> dict[str, list[str]]:
    """Each statement of a changelist page that reads ``table`` in order with a limit (the page
    itself, and the filters' latest sessions), with the node types of its plan, planned as if
    sorting were unaffordable: a Sort is left only where no index gives the rows in order."""
    from django.db import connection

    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, *rest: Any) -> Any:
        captured.append((sql, params))
        return execute(sql, params, *rest)

    with connection.execute_wrapper(capture):
        assert admin_client.get(url).status_code == 200
    limited = [
        (s, p) for s, p in captured if s.startswith("SELECT") and f'FROM "{table}"' in s
        and "ORDER BY" in s and "LIMIT" in s and "DISTINCT" not in s
    ]  # fmt: skip
    plans: dict[str, list[str]] = {}

    def walk(plan: dict[str, Any], nodes: list[str]) -> None:
        nodes.append(plan["Node Type"])
        for child in plan.get("Plans", []):
            walk(child, nodes)

    with connection.cursor() as cursor:
        cursor.execute("SET enable_sort = off")
        try:
            for sql, params in limited:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                walk(cursor.fetchone()[0][0]["Plan"], plans.setdefault(sql, []))
        finally:
            cursor.execute("RESET enable_sort")
    return plans


@pytest.mark.parametrize(
    ("model", "url", "table"),
    [
        (WebhookDelivery, DELIVERIES, "django_pagecall_webhookdelivery"),
        (Session, SESSIONS, "django_pagecall_session"),
    ],
)
def test_the_lists_read_their_newest_rows_from_an_index(
    busy_room: PagecallRoom,
    admin_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    model: Any,
    url: str,
    table: str,
) -> None:
    """Without their newest-first indexes, every page of these lists would sort the whole table."""
    from tests.test_webhook_support import requires_postgres

    requires_postgres("query plans")
    assert model.objects.count() > 2
    monkeypatch.setattr(site._registry[model], "list_per_page", 2)  # a page, not all of them
    plans = _plans_of_the_limited_queries(admin_client, url, table)
    page = [sql for sql in plans if sql.startswith(f'SELECT "{table}"."id", ')]
    assert len(page) == 1, list(plans)  # the page itself is among them
    assert len(plans) == (2 if model is Session else 1)  # and the filters' latest sessions
    for sql, nodes in plans.items():
        assert "Sort" not in nodes and "Incremental Sort" not in nodes, (sql, nodes)
        assert "Limit" in nodes
