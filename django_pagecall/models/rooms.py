"""Rooms, their members and the workspace users, as the site knows them and as Pagecall does.

``save`` and ``delete`` hand a change to :mod:`django_pagecall.sync` once the transaction
commits; :class:`SyncQuerySet` holds the claim, lease and settle steps both models share
(docs/how-sync-works.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from ..meetings import Attendance, Meeting


#: A room's fields that come from Pagecall (its Room object, and the webhooks' counters).
MIRRORED_FIELDS = (
    "application_id",
    "layout",
    "thumbnail_url",
    "meeting_time",
    "started_at",
    "terminated_at",
    "pagecall_created_at",
    "pagecall_updated_at",
    "sessions_count",
    "members_count",
    "counters_at",
)

#: Fields only the app's sync code writes; a plain ``save()`` of an existing row leaves them alone.
SYNC_FIELDS = frozenset(
    {
        "sync_state",
        "sync_attempts",
        "sync_error",
        "attempt_started_at",
        "lease_until",
        "synced_at",
        "needs_update",
        "pagecall_id",
        "name_in_flight",
        "is_blocked",
        "terminate_requested",
        "meeting_started_at",
        "usage_counted",
        "usage_counted_at",
        "usage_stale",
        *MIRRORED_FIELDS,
    }
)


def _user_fields(instance: models.Model, update_fields: Any, needs_update: bool) -> set[str]:
    """The fields a ``save()`` of an existing row writes: what the caller asked for, or every
    field the site owns; plus ``needs_update`` when the change must reach Pagecall."""
    if update_fields is None:
        fields = {f.name for f in instance._meta.concrete_fields if not f.primary_key}
        fields -= SYNC_FIELDS
    else:
        fields = set(update_fields)
    if needs_update:
        fields.add("needs_update")
    return fields


#: The largest primary key a BigAutoField holds on every supported database.
MAX_PK = 2**63 - 1


def parse_pk(text: str) -> int | None:
    """``text`` as a primary key when it is one (ASCII digits, within range), else None."""
    # isascii(): str.isdigit() is also true of "²", which int() refuses, and of other scripts' digits.
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_PK else None


def validate_workspace(name: str) -> None:
    """A form's error for a workspace the settings do not configure."""
    from ..conf import pagecall_settings
    from ..exceptions import WorkspaceNotConfigured

    try:
        pagecall_settings.ensure_workspace(name)
    except WorkspaceNotConfigured:
        raise ValidationError(
            _('The Pagecall workspace “%(name)s” is not configured (PAGECALL["WORKSPACES"]).'),
            code="unknown_workspace",
            params={"name": name},
        ) from None


def workspace_field() -> models.CharField[str, str]:
    from ..conf import DEFAULT_WORKSPACE, WORKSPACE_NAME_LENGTH

    return models.CharField(
        _("workspace"),
        max_length=WORKSPACE_NAME_LENGTH,
        default=DEFAULT_WORKSPACE,
        validators=[validate_workspace],
        help_text=_('The Pagecall workspace: a name in PAGECALL["WORKSPACES"], or “default”.'),
    )


class RoomType(models.TextChoices):
    OPEN = "open", _("open: anyone with the link")
    PUBLIC = "public", _("public: users of the workspace")
    PRIVATE = "private", _("private: invited members only")


class MemberType(models.TextChoices):
    GUEST = "guest", _("guest")
    HOST = "host", _("host")
    MONITOR = "monitor", _("monitor (watches, cannot join)")


class SyncState(models.TextChoices):
    PENDING = "pending", _("pending")  # waiting to be sent (or sent again)
    CREATING = "creating", _("creating")  # claimed by a worker, request under way
    SYNCED = "synced", _("synced")
    FAILED = "failed", _("failed")  # Pagecall refused, or the app gave up


SyncModel = TypeVar("SyncModel", bound="SyncFields")


class SyncQuerySet(models.QuerySet[SyncModel]):
    """The steps of an attempt to send a row, shared by rooms and members.

    A worker claims the row with a compare-and-set committed before its HTTP call, holding a
    lease; every later write is conditional on that lease, so a worker whose claim was lost
    (expired, taken over, the row deleted) changes nothing.
    """

    def claim(
        self, pk: int, lease_until: Any, now: Any, *, was: dict[str, Any], **extra: Any
    ) -> bool:
        """Take the row for one attempt if it is still as it was read (``was``)."""
        return bool(
            self.filter(pk=pk, **was).update(
                sync_state=SyncState.CREATING,
                sync_attempts=F("sync_attempts") + 1,
                attempt_started_at=now,
                lease_until=lease_until,
                **extra,
            )
        )

    def claimed(self, pk: int, lease_until: Any) -> Self:
        """The row, while the claim with this lease holds it."""
        return self.filter(pk=pk, sync_state=SyncState.CREATING, lease_until=lease_until)

    def hold(self, pk: int, lease_until: Any, until: Any, **changes: Any) -> bool:
        """Keep the claim until ``until``: after an unknown outcome, nobody sends again before."""
        return bool(self.claimed(pk, lease_until).update(lease_until=until, **changes))

    def settle(self, pk: int, lease_until: Any, state: str, **changes: Any) -> bool:
        """End the attempt in ``state`` (synced, pending or failed) if the claim still holds."""
        released = {"lease_until": None, **self.model.CLAIM_RELEASES}
        return bool(self.claimed(pk, lease_until).update(sync_state=state, **released, **changes))


class SyncFields(models.Model):
    """The state of a row's journey to Pagecall, shared by rooms and members."""

    sync_state = models.CharField(
        _("sync state"), max_length=16, choices=SyncState.choices, default=SyncState.PENDING
    )
    sync_attempts = models.PositiveIntegerField(_("attempts"), default=0, editable=False)
    sync_error = models.TextField(_("last error"), blank=True, default="", editable=False)
    attempt_started_at = models.DateTimeField(
        _("attempt started at"), null=True, blank=True, editable=False
    )
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True, editable=False)
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True, editable=False)
    needs_update = models.BooleanField(
        _("needs update"),
        default=False,
        editable=False,
        help_text=_("A local change has yet to reach Pagecall."),
    )

    #: The site's fields whose change is sent to Pagecall as an update (each model names its own).
    SENT_FIELDS: ClassVar[tuple[str, ...]] = ()

    class Meta:
        abstract = True

    #: What leaving the ``creating`` state clears besides the lease (a room: its name in flight).
    CLAIM_RELEASES: ClassVar[dict[str, Any]] = {}

    #: SENT_FIELDS as the database held them, to tell a change (a deferred one is not here).
    _loaded: dict[str, Any]

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any, **kwargs: Any) -> Self:
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded = instance._values(cls.SENT_FIELDS)
        return instance

    def _values(self, names: Iterable[str]) -> dict[str, Any]:
        # From __dict__: reading a deferred field would load it.
        return {name: self.__dict__[name] for name in names if name in self.__dict__}

    def refresh_from_db(
        self,
        using: str | None = None,
        fields: Iterable[str] | None = None,
        from_queryset: Any = None,
    ) -> None:
        """Also what a deferred field's first read does: the values read are the new baseline."""
        fields = list(fields) if fields is not None else None
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        refreshed = [f for f in self.SENT_FIELDS if fields is None or f in fields]
        self._loaded = {**getattr(self, "_loaded", {}), **self._values(refreshed)}

    def _sent_fields_changed(self) -> bool:
        """Whether a field of SENT_FIELDS differs from the database's value as loaded (or
        refreshed). One that was deferred and then given a value is compared with the
        database's value now."""
        if self._state.adding:
            return False
        if not hasattr(self, "_loaded"):  # built by hand with a primary key, not loaded
            self._loaded = {}
        unknown = [f for f in self.SENT_FIELDS if f not in self._loaded and f in self.__dict__]
        if unknown:
            row = type(self)._base_manager.using(self._state.db).filter(pk=self.pk).values(*unknown)
            self._loaded.update(row.first() or {})
        current = self._values(self.SENT_FIELDS)
        return any(f in self._loaded and self._loaded[f] != value for f, value in current.items())

    def _saved(self) -> None:
        self._loaded = self._values(self.SENT_FIELDS)


class Room(SyncFields):
    name = models.CharField(_("name"), max_length=255)
    workspace = workspace_field()
    type = models.CharField(
        _("type"), max_length=16, choices=RoomType.choices, default=RoomType.PUBLIC
    )
    record = models.BooleanField(_("record the meeting"), default=True)
    max_meeting_seconds = models.PositiveIntegerField(
        _("max meeting seconds"),
        null=True,
        blank=True,
        help_text=_("Pagecall ends the meeting after this much time with two or more people."),
    )
    pagecall_id = models.CharField(
        _("Pagecall id"), max_length=64, null=True, blank=True, unique=True, editable=False
    )
    # The name a claim sent, while the room is being created: after an unknown outcome the room
    # is looked up by it in its workspace. Unique there, and NULL otherwise, so that one room of
    # a name is in flight in a workspace.
    name_in_flight = models.CharField(  # noqa: DJ001  (NULL: not in flight, so not unique)
        _("name in flight"), max_length=255, null=True, blank=True, editable=False
    )

    # Mirrored from Pagecall's Room object.
    application_id = models.CharField(
        _("Pagecall application id"), max_length=64, blank=True, default="", editable=False
    )
    layout = models.CharField(_("layout"), max_length=64, blank=True, default="", editable=False)
    thumbnail_url = models.URLField(
        _("thumbnail URL"), max_length=1024, blank=True, default="", editable=False
    )
    meeting_time = models.PositiveIntegerField(
        _("meeting time (seconds)"), null=True, blank=True, editable=False
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    terminated_at = models.DateTimeField(_("terminated at"), null=True, blank=True, editable=False)
    pagecall_created_at = models.DateTimeField(
        _("created at Pagecall"), null=True, blank=True, editable=False
    )
    pagecall_updated_at = models.DateTimeField(
        _("updated at Pagecall"), null=True, blank=True, editable=False
    )

    terminate_requested = models.BooleanField(
        _("termination requested"), default=False, editable=False
    )

    # Snapshots from webhooks: the newest timestamp wins.
    sessions_count = models.PositiveIntegerField(
        _("connected sessions"), null=True, blank=True, editable=False
    )
    members_count = models.PositiveIntegerField(
        _("connected members"), null=True, blank=True, editable=False
    )
    counters_at = models.DateTimeField(_("counted at"), null=True, blank=True, editable=False)
    # The start of the meeting going on as meeting_started announced it; null between meetings.
    meeting_started_at = models.DateTimeField(
        _("in a meeting since"), null=True, blank=True, editable=False
    )

    # The room's share of the monthly usage, {"YYYY-MM-01": [sessions, meetings, seconds]}, as
    # counted at usage_counted_at; usage_stale: a session changed since (usage.count_room).
    usage_counted = models.JSONField(_("usage counted"), default=dict, blank=True, editable=False)
    usage_counted_at = models.DateTimeField(
        _("usage counted at"), null=True, blank=True, editable=False
    )
    usage_stale = models.BooleanField(_("usage to count"), default=False, editable=False)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = SyncQuerySet["Room"].as_manager()

    #: The workspace as the database held it, to refuse moving a room that is on Pagecall.
    _loaded_workspace: str | None

    class Meta:
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["sync_state", "lease_until"], name="pagecall_room_sync_idx"),
            # The usage report's meetings going on, and the rooms the sweep counts.
            models.Index(fields=["meeting_started_at"], name="pagecall_room_meeting_idx"),
            models.Index(fields=["usage_stale"], name="pagecall_room_usage_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name_in_flight"], name="pagecall_room_one_name_in_flight"
            )
        ]

    SENT_FIELDS = ("name",)
    CLAIM_RELEASES = {"name_in_flight": None}

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        from .. import sync
        from ..conf import pagecall_settings

        adding = self._state.adding
        renamed = self._sent_fields_changed()
        if renamed:
            self.needs_update = True
        if not adding:
            # An instance loaded before a worker stored Pagecall's answer must not write its
            # stale copy of the sync fields back (that would lose the room's Pagecall id).
            kwargs["update_fields"] = _user_fields(self, kwargs.get("update_fields"), renamed)
        if adding or "workspace" in kwargs["update_fields"]:
            pagecall_settings.ensure_workspace(self.workspace)  # refused before anything is sent
            self._refuse_a_move()
        super().save(*args, **kwargs)
        self._saved()
        if adding and not (self.sync_state == SyncState.SYNCED and self.pagecall_id):
            # A room saved with its Pagecall id already (an import) is on Pagecall.
            sync.schedule_room_creation(self)
        elif renamed:
            sync.schedule_room_update(self)

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any, **kwargs: Any) -> Self:
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded_workspace = instance.__dict__.get("workspace")
        return instance

    def _refuse_a_move(self) -> None:
        """A room on Pagecall, or being created there, stays in its workspace: Pagecall cannot
        move it, and its later calls would go where it is not."""
        was = getattr(self, "_loaded_workspace", None)
        if self._state.adding or was is None or was == self.workspace:
            return
        if self.pagecall_id or self.sync_state in (SyncState.CREATING, SyncState.SYNCED):
            raise ValueError(
                f"room {self.pk} is on Pagecall in the workspace {was!r} and cannot move to "
                f"{self.workspace!r}: create a new room there instead"
            )

    def _saved(self) -> None:
        super()._saved()
        self._loaded_workspace = self.__dict__.get("workspace")

    def meetings(self) -> list[Meeting]:
        """The spans during which at least one of the room's sessions was open, oldest first
        (docs/meetings.md)."""
        from ..meetings import meetings_of

        return meetings_of(self)

    def attendance(self) -> list[Attendance]:
        """One row per Pagecall user id who had a session in the room (docs/meetings.md)."""
        from ..meetings import attendance_of

        return attendance_of(self)

    @property
    def is_terminated(self) -> bool:
        return self.terminated_at is not None

    def terminate(self) -> None:
        """Close the room on Pagecall (``is_terminated``); nobody can join it afterwards."""
        from .. import sync

        if self.terminate_requested:
            return
        self.terminate_requested = True
        self.needs_update = True
        super().save(update_fields=["terminate_requested", "needs_update", "updated_at"])
        # Even when this instance has no Pagecall id: the row may have one by now, and the
        # task reads the row (a room still being created sends it once it is created).
        sync.schedule_room_update(self)

    def join_url(self, user: AbstractBaseUser | Member | str | None = None) -> str:
        """``https://app.pagecall.com/meet?room_id=...&access_token=...`` for ``user``.

        ``user`` is a site user, a :class:`Member` or a Pagecall user id; it is
        registered with Pagecall (``POST /users``) the first time. Without a
        user the link is anonymous, which only an ``open`` room accepts.
        """
        return self._app_url("meet", user)

    def replay_url(self, user: AbstractBaseUser | Member | str | None = None) -> str:
        """The replay link (``/replay``), with the user's access token like :meth:`join_url`."""
        return self._app_url("replay", user)

    def _app_url(self, page: str, user: AbstractBaseUser | Member | str | None) -> str:
        from .. import sync

        self.app_link(page, None)  # refuses a room that is not on Pagecall before any call
        token = None if user is None else sync.access_token_for(self, user)
        return self.app_link(page, token)

    def app_link(self, page: str, access_token: str | None) -> str:
        """``{APP_URL}/{page}?room_id=...&access_token=...``, for a token already at hand."""
        from ..conf import pagecall_settings

        if not self.pagecall_id:
            raise ValueError(
                f"room {self.pk} has no Pagecall id yet (sync state: {self.sync_state})"
            )
        app_url = pagecall_settings.app_url(self.workspace)
        query = {"room_id": self.pagecall_id}
        if access_token is not None:
            query["access_token"] = access_token
        return f"{app_url}/{page}?{urlencode(query)}"


class Member(SyncFields):
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="members", verbose_name=_("room")
    )
    user_id = models.CharField(
        _("Pagecall user id"),
        max_length=255,
        blank=True,
        help_text=_(
            "The site's own id for this person. Left blank, it is derived from the site user."
        ),
    )
    type = models.CharField(
        _("type"), max_length=16, choices=MemberType.choices, default=MemberType.GUEST
    )
    name = models.CharField(_("display name"), max_length=255, blank=True, default="")
    site_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="pagecall_members",
        verbose_name=_("site user"),
    )
    pagecall_id = models.CharField(
        _("Pagecall member id"), max_length=64, blank=True, default="", editable=False
    )
    is_blocked = models.BooleanField(_("blocked"), default=False, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = SyncQuerySet["Member"].as_manager()

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["room", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["room", "user_id"], name="pagecall_member_unique_user")
        ]
        indexes = [models.Index(fields=["sync_state"], name="pagecall_member_sync_idx")]

    SENT_FIELDS = ("type", "name")

    def __str__(self) -> str:
        return self.name or self.user_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        from .. import sync

        if not self.user_id and self.site_user is not None:
            self.user_id = sync.user_id_for(self.site_user)
        if not self.user_id:
            raise ValueError("a Member needs a user_id or a site_user")
        from ..client import DOT_SEGMENTS

        if self.user_id in DOT_SEGMENTS:
            raise ValueError(f"a Member's user_id cannot be {self.user_id!r}: not in a URL path")
        adding = self._state.adding
        changed = self._sent_fields_changed()
        if changed:
            self.needs_update = True
        if not adding:
            kwargs["update_fields"] = _user_fields(self, kwargs.get("update_fields"), changed)
        super().save(*args, **kwargs)
        self._saved()
        if adding and not (self.sync_state == SyncState.SYNCED and self.pagecall_id):
            # A member saved with its Pagecall id already (an import) is on Pagecall.
            sync.schedule_member_creation(self)
        elif changed:
            sync.schedule_member_update(self)

    def remove(self) -> None:
        """Take this person out of the room: Pagecall blocks them (private rooms only)."""
        from .. import sync

        self.is_blocked = True
        self.needs_update = True
        super().save(update_fields=["is_blocked", "needs_update"])
        sync.schedule_member_update(self)


class PagecallUser(models.Model):
    """A user registered in a Pagecall workspace, with the access token that lets them join
    that workspace's rooms: the same person in two workspaces has two rows."""

    workspace = workspace_field()
    user_id = models.CharField(_("Pagecall user id"), max_length=255)
    name = models.CharField(_("name"), max_length=255, blank=True, default="")
    access_token = models.CharField(
        _("access token"), max_length=255, blank=True, default="", editable=False
    )
    registered_at = models.DateTimeField(_("registered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("Pagecall user")
        verbose_name_plural = _("Pagecall users")
        ordering = ["user_id", "workspace"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user_id"], name="pagecall_user_unique_in_workspace"
            )
        ]

    def __str__(self) -> str:
        return self.user_id

    def __repr__(self) -> str:
        return f"<PagecallUser {self.user_id!r} in {self.workspace!r}>"  # never the token


class DeletedRoom(models.Model):
    """A Pagecall room whose local row was deleted, and which may still exist at Pagecall.

    After an unknown outcome a room is looked up by the name it was sent with among the rooms
    Pagecall created lately, and one that is another row's is never adopted: nor is one whose
    row was deleted (a room deleted and made again under its name at once), even while the
    deleted row's own attempt had an unknown outcome. Kept while an attempt could still find
    it, then dropped (:func:`django_pagecall.sync.forget_room`).
    """

    pagecall_id = models.CharField(  # noqa: DJ001  (NULL: unknown, so not unique)
        _("Pagecall id"), max_length=64, unique=True, null=True
    )
    pagecall_created_at = models.DateTimeField(_("created at Pagecall"), null=True)
    # A row deleted while it was being created, its Pagecall id unknown: the name it was sent
    # with stays taken until its request has surely landed, and what Pagecall created under
    # that name before then is never adopted by a namesake.
    workspace = models.CharField(_("workspace"), max_length=64, blank=True, default="")
    name_in_flight = models.CharField(  # noqa: DJ001  (NULL: a room whose id is known)
        _("name in flight"), max_length=255, null=True
    )
    in_flight_until = models.DateTimeField(_("in flight until"), null=True)
    deleted_at = models.DateTimeField(_("deleted"), auto_now_add=True)

    class Meta:
        verbose_name = _("deleted room")
        verbose_name_plural = _("deleted rooms")
        indexes = [
            models.Index(
                fields=["name_in_flight", "in_flight_until"], name="pagecall_deleted_flight_idx"
            )
        ]

    def __str__(self) -> str:
        return self.pagecall_id or _("%(name)r (in flight)") % {"name": self.name_in_flight}


@receiver(pre_delete, sender=Room, dispatch_uid="django_pagecall.room_deleted")
def _room_deleted(sender: type[Room], instance: Room, using: str, **kwargs: Any) -> None:
    """Also for queryset and admin bulk deletes: what the row, as the deleting transaction sees
    it, leaves at Pagecall is remembered, and deleted there with ``DELETE_REMOTE_ROOMS`` (a
    room being created is seen to by the worker that creates it)."""
    from .. import sync

    sync.room_deleted(instance.pk, using=using)


@receiver(pre_delete, sender=Member, dispatch_uid="django_pagecall.member_deleted")
def _member_deleted(
    sender: type[Member], instance: Member, using: str, origin: Any = None, **kwargs: Any
) -> None:
    """A member deleted from a private room is blocked on Pagecall, unless its room goes too.

    Before the delete, in its transaction: what is owed is decided from the row as it is
    then (locked), not from the instance, which may predate what a worker stored.
    """
    from .. import sync

    if isinstance(origin, Room) or getattr(origin, "model", None) is Room:
        return
    sync.schedule_deleted_member_block(instance.pk, using=using)
