"""The admin for calls owed for deleted rows: read-only, and "send now" needs the delete
permission."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, PendingAction, Room

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = "admin:django_pagecall_pendingaction_changelist"


def owed_block(emu: Emulator) -> PendingAction:
    room = Room.objects.create(name="Private", type="private")
    member = Member.objects.create(room=room, user_id="gone")
    emu.inject("PUT", "/rooms/{room_id}/members/{member_id}", status=503, times=None)
    Member.objects.filter(pk=member.pk).delete()
    emu.clear_faults()
    return PendingAction.objects.get()


def staff(*codenames: str) -> Client:
    user = User.objects.create_user("staffer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_listed_read_only(pagecall_emulator: Emulator, admin_client: Any) -> None:
    action = owed_block(pagecall_emulator)
    page = admin_client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert "gone" in page.content.decode()
    detail = admin_client.get(
        reverse("admin:django_pagecall_pendingaction_change", args=[action.pk])
    )
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.get(reverse("admin:django_pagecall_pendingaction_add")).status_code == 403


def test_send_now_needs_the_delete_permission(pagecall_emulator: Emulator) -> None:
    action = owed_block(pagecall_emulator)
    viewer = staff("view_pendingaction")
    data = {"action": "send_now", "_selected_action": [action.pk]}
    viewer.post(reverse(CHANGELIST), data)
    assert PendingAction.objects.filter(pk=action.pk).exists()  # not offered, not run

    sender = Client()
    user = User.objects.get(username="staffer")
    user.user_permissions.add(Permission.objects.get(codename="delete_pendingaction"))
    sender.force_login(user)
    sender.post(reverse(CHANGELIST), data)
    assert not PendingAction.objects.filter(pk=action.pk).exists()
    put = pagecall_emulator.requests[-1]
    assert (put["method"], put["body"]) == ("PUT", {"is_blocked": True})
