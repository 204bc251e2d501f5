"""The webhook endpoint (``pagecall:webhook``): a DRF view that authenticates Pagecall and hands over.

Owns the HTTP side only: credentials (:class:`PagecallWebhookAuthentication`,
over :mod:`django_pagecall.webhook_auth`), the body size limit, and mapping
:class:`~.processing.Outcome` to a JSON response. Everything about storing
and applying a delivery is in :mod:`.processing`.

Everything the host's ``REST_FRAMEWORK`` settings could change about this
view is pinned here (authentication, permissions, throttles, renderer,
content negotiation, exception handler), so the contract holds on any site.
The view is CSRF-exempt (DRF's ``APIView.as_view`` does it; no session
authentication runs, so DRF enforces none) and opts out of ``ATOMIC_REQUESTS``
on every database: it manages its own transactions, and a failure must
leave a stored delivery behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from django.db import connections, router, transaction
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from ..conf import pagecall_settings
from ..models import WebhookDelivery
from ..webhook_auth import ROOM_HEADER, SECRET_HEADER, authenticated_room_pk
from . import processing

if TYPE_CHECKING:
    from rest_framework.views import AsView, GenericView

logger = logging.getLogger(__name__)


class PagecallWebhookAuthentication(BaseAuthentication):
    """The per-room headers given to Pagecall at room creation; ``request.auth`` is the room's pk."""

    def authenticate(self, request: Request) -> tuple[Any, int] | None:
        headers = request.headers
        if ROOM_HEADER not in headers and SECRET_HEADER not in headers:
            return None  # no credentials at all: the permission check answers 401
        room_pk = authenticated_room_pk(headers)
        if room_pk is None:
            logger.warning(
                "Webhook refused: invalid credentials (room header %r) from %s",
                headers.get(ROOM_HEADER, "")[:32],
                request.META.get("REMOTE_ADDR"),
            )
            raise exceptions.AuthenticationFailed("Invalid webhook credentials.")
        user_factory = cast(Callable[[], Any] | None, api_settings.UNAUTHENTICATED_USER)
        return (user_factory() if user_factory else None), room_pk

    def authenticate_header(self, request: Request) -> str:
        return f'{SECRET_HEADER} realm="pagecall-webhook"'


class IsPagecallRoom(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, int)


class JSONOnly(BaseContentNegotiation):
    """Always JSON, whatever the caller's Accept header says (Pagecall's is not documented)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def webhook_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with the error code beside the message; anything else is re-raised by DRF."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = {"error": exc.default_code, "detail": str(exc.detail)}
    return response


class WebhookView(APIView):
    authentication_classes = [PagecallWebhookAuthentication]
    permission_classes = [IsPagecallRoom]
    throttle_classes: list[Any] = []
    renderer_classes = [JSONRenderer]
    parser_classes: list[Any] = []  # the body is read raw: its size is checked before it is read
    content_negotiation_class = JSONOnly
    versioning_class = None

    @classmethod
    def as_view(cls, **initkwargs: Any) -> AsView[GenericView]:
        view = super().as_view(**initkwargs)
        for alias in connections:  # non_atomic_requests() alone covers only "default"
            view = transaction.non_atomic_requests(using=alias)(view)
        return view

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return webhook_exception_handler

    def post(self, request: Request) -> Response:
        room_pk = request.auth
        assert isinstance(room_pk, int)  # IsPagecallRoom
        django_request: HttpRequest = request._request
        using = router.db_for_write(WebhookDelivery)
        headers = dict(django_request.headers)
        remote_addr = django_request.META.get("REMOTE_ADDR")
        limit = int(pagecall_settings.WEBHOOK_MAX_BODY_SIZE)
        try:
            size = int(django_request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        if size > limit:
            outcome = processing.refuse_oversized(room_pk, size, headers, remote_addr, using)
        else:
            raw = django_request.body
            outcome = processing.receive(room_pk, raw, headers, remote_addr, using)
        return Response(outcome.body, status=outcome.status)
