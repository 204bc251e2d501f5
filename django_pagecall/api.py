"""The REST API for front ends (``pagecall:api-room-list``, ``-detail``, ``-join``), on the site's
own Django REST framework authentication, permission and throttle defaults, plus a signed-in
person and the ``pagecall-join`` throttle scope on joins (docs/joining.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from django.db.models import QuerySet
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from rest_framework import exceptions, generics, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle

from . import sync
from .exceptions import PagecallError
from .joining import UNREACHABLE, Availability, availability, joinable_rooms
from .models import Room

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

#: The join throttle's rate when ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` has no
#: ``"pagecall-join"``: each join may register the person with Pagecall.
DEFAULT_JOIN_RATE = "30/minute"


class RoomNotReady(exceptions.APIException):
    status_code = 409
    default_code = "room_not_ready"
    default_detail = _("The room is still being set up on Pagecall; try again shortly.")


class RoomFailed(exceptions.APIException):
    status_code = 409
    default_code = "room_failed"
    default_detail = _("The room could not be created on Pagecall.")


class RoomEnded(exceptions.APIException):
    status_code = 410
    default_code = "room_ended"
    default_detail = _("The meeting has ended; the room is closed.")


class PagecallUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "pagecall_unavailable"
    default_detail = UNREACHABLE


UNAVAILABLE = {
    Availability.SETTING_UP: RoomNotReady,
    Availability.FAILED: RoomFailed,
    Availability.ENDED: RoomEnded,
}


class JoinRateThrottle(ScopedRateThrottle):
    """The ``pagecall-join`` scope, at :data:`DEFAULT_JOIN_RATE` unless the site sets its rate."""

    def get_rate(self) -> str | None:
        rates = cast(dict[str, str | None], api_settings.DEFAULT_THROTTLE_RATES or {})
        return rates.get(str(self.scope), DEFAULT_JOIN_RATE)


class RoomSerializer(serializers.ModelSerializer[Room]):
    availability = serializers.SerializerMethodField(
        help_text="ready, setting_up, failed or ended."
    )
    online = serializers.IntegerField(read_only=True, help_text="Sessions open in the room now.")

    class Meta:
        model = Room
        fields = [
            "id",
            "name",
            "type",
            "record",
            "pagecall_id",
            "sync_state",
            "availability",
            "online",
            "started_at",
            "terminated_at",
        ]
        read_only_fields = fields

    def get_availability(self, room: Room) -> str:
        return availability(room).value


def _defaults(name: str) -> list[Any]:
    """Instances of the classes the site's ``REST_FRAMEWORK`` names, read at request time."""
    return [cls() for cls in cast(list[type[Any]], getattr(api_settings, name))]


class JoinableRoomsView(generics.GenericAPIView[Room]):
    """The site's DRF defaults, a signed-in person, and only the rooms they may join."""

    def get_authenticators(self) -> list[BaseAuthentication]:
        return _defaults("DEFAULT_AUTHENTICATION_CLASSES")

    def get_permissions(self) -> list[BasePermission]:
        return [*_defaults("DEFAULT_PERMISSION_CLASSES"), IsAuthenticated()]

    def get_throttles(self) -> list[BaseThrottle]:
        return _defaults("DEFAULT_THROTTLE_CLASSES")

    def get_queryset(self) -> QuerySet[Room]:
        return joinable_rooms(self.request.user).order_by("-created_at", "-pk")


class RoomList(JoinableRoomsView, generics.ListAPIView[Room]):
    """The rooms the signed-in person may join."""

    serializer_class = RoomSerializer


class RoomDetail(JoinableRoomsView, generics.RetrieveAPIView[Room]):
    """One room the signed-in person may join."""

    serializer_class = RoomSerializer


@method_decorator(never_cache, name="dispatch")
class RoomJoin(JoinableRoomsView):
    """What Pagecall's SDKs take to enter the room: its id, the person's token and the link."""

    throttle_scope = "pagecall-join"

    def get_throttles(self) -> list[BaseThrottle]:
        # A site's own ScopedRateThrottle would refuse a scope it has no rate for: ours has one.
        defaults = [t for t in super().get_throttles() if not isinstance(t, ScopedRateThrottle)]
        return [*defaults, JoinRateThrottle()]

    def post(self, request: Request, pk: int) -> Response:
        room = self.get_object()
        state = availability(room)
        if state is not Availability.READY:
            raise UNAVAILABLE[state]()
        try:
            token = sync.access_token_for(room, cast("AbstractBaseUser", request.user))
        except PagecallError as exc:
            logger.warning("Could not get an access token for room %s: %s", room.pk, exc)
            raise PagecallUnavailable() from exc
        body = {"room_id": room.pagecall_id, "access_token": token}
        return Response({**body, "url": room.app_link("meet", token)})
