"""Pagecall workspace users: a site user's Pagecall id, registration and access tokens, each in
the workspace of the room they are for."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from ..client import get_client
from ..conf import pagecall_settings
from ..models import Member, PagecallUser, Room

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


logger = logging.getLogger("django_pagecall.sync")


def user_id_for(site_user: AbstractBaseUser) -> str:
    """A site user's Pagecall user id: ``PAGECALL["USER_ID_FUNCTION"]`` or ``str(user.pk)``."""
    func = pagecall_settings.USER_ID_FUNCTION
    if func is None:
        return str(site_user.pk)
    resolved: Callable[[Any], Any] = import_string(func) if isinstance(func, str) else func
    return str(resolved(site_user))


def register_user(
    user_id: str, name: str = "", *, workspace: str = "default", using: str = "default"
) -> PagecallUser:
    """``POST /users`` in ``workspace`` (an upsert at Pagecall) and keep the access token."""
    remote = get_client(workspace).create_user(user_id=user_id, name=name or None)
    user, _ = PagecallUser.objects.using(using).update_or_create(
        workspace=workspace,
        user_id=user_id,
        defaults={"name": remote.name or name, "access_token": remote.access_token or ""},
    )
    logger.info("Registered Pagecall user %s in workspace %r", user_id, workspace)
    return user


def ensure_registered(members: list[Member], workspace: str, using: str) -> None:
    known = set(
        PagecallUser.objects.using(using)
        .filter(workspace=workspace, user_id__in=[m.user_id for m in members])
        .values_list("user_id", flat=True)
    )
    for member in members:
        if member.user_id not in known:
            register_user(member.user_id, member.name, workspace=workspace, using=using)


def access_token_for(room: Room, user: AbstractBaseUser | Member | str) -> str:
    """The access token of ``user``, registering them with Pagecall the first time.

    A site user who is a member of ``room`` joins as that member (its ``user_id``, which may
    have been given explicitly or derived under an earlier ``USER_ID_FUNCTION``); any other
    site user by the id :func:`user_id_for` derives.
    """
    using = room._state.db or "default"
    name = ""
    if isinstance(user, Member):
        user_id, name = user.user_id, user.name
    elif isinstance(user, str):
        user_id = user
    else:
        if user.pk is None:
            raise ValueError(
                "an anonymous site user has no Pagecall user id: call join_url() without a "
                "user for an open room, or log the user in"
            )
        membership = (
            Member.objects.using(using)
            .filter(room_id=room.pk, site_user_id=user.pk)
            .values_list("user_id", "name")
            .first()
        )
        if membership is not None:
            user_id, name = membership
        else:
            user_id = user_id_for(user)
            name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    known = (
        PagecallUser.objects.using(using)
        .filter(workspace=room.workspace, user_id=user_id)
        .exclude(access_token="")
        .first()
    )
    if known is None:
        known = register_user(user_id, name, workspace=room.workspace, using=using)
    return known.access_token
