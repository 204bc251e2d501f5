"""The webhook endpoint (``pagecall:webhook``): a DRF view that authenticates Pagecall by the
room's headers and hands the raw body to :func:`.processing.receive`.

Authentication, permissions, throttles and negotiation are the view's own, whatever the
site's ``REST_FRAMEWORK`` defaults say: Pagecall is the only caller (docs/webhooks.md).
"""

from __future__ import annotations

import copy
import json
import logging
import time
import zlib
from collections.abc import Callable, Iterable
from functools import cache, partial
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Final, cast

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.db import connections, router, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_safe
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
from ..models import DeliveryResult, WebhookDelivery
from . import processing
from .auth import ROOM_HEADER, SECRET_HEADER, authenticated_room_pk

if TYPE_CHECKING:
    from rest_framework.views import AsView, GenericView

logger = logging.getLogger(__name__)


class PagecallWebhookAuthentication(BaseAuthentication):
    """The per-room headers given to Pagecall at room creation; ``request.auth`` is the room's pk."""

    def authenticate(self, request: Request) -> tuple[Any, int] | None:
        headers = request._request.headers  # not through Request.__getattr__, once per webhook
        if ROOM_HEADER not in headers and SECRET_HEADER not in headers:
            return None  # no credentials at all: the permission check answers 401
        room_pk = authenticated_room_pk(headers)
        if room_pk is None:
            # Logged by the view once the limiter has counted it (see WebhookView.handle_exception).
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


class TooManyFailedAuthentications(exceptions.Throttled):
    default_detail = "Too many failed authentications from this address."
    default_code = "too_many_failed_authentications"


class FailedAuthLimiter:
    """At most ``PAGECALL["WEBHOOK_AUTH_FAILURES_PER_MINUTE"]`` refusals for credentials per remote
    address and clock minute, counted in Django's default cache.

    Only a request that already failed authentication reaches it, so a genuine
    delivery costs no cache access and is never refused: Pagecall does not
    retry, and a 429 to it would lose a session. What the limit bounds is
    what failures cost the site: log lines, and the work of answering them.
    A cache that fails is logged and ignored (the refusal stays a 401).
    """

    key_prefix: Final = "django_pagecall:webhook:auth-failures"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def record_failure(self, remote_addr: str | None) -> tuple[int, int, int]:
        """Count one failure; returns (failures this minute, the limit, seconds left in it)."""
        from ..conf import pagecall_settings

        limit = int(pagecall_settings.WEBHOOK_AUTH_FAILURES_PER_MINUTE)
        now = self.clock()
        window = int(now // 60)
        left = 60 - int(now % 60)
        if limit == 0:
            return 0, 0, left
        key = f"{self.key_prefix}:{remote_addr or 'unknown'}:{window}"
        cache_ = caches[DEFAULT_CACHE_ALIAS]
        try:
            try:
                count = cache_.incr(key)
            except ValueError:  # the first failure of the window (or the key was evicted)
                count = 1 if cache_.add(key, 1, timeout=120) else cache_.incr(key)
        except Exception:
            logger.warning("Webhook: counting a failed authentication failed", exc_info=True)
            return 0, limit, left
        return count, limit, left


failed_auth_limiter = FailedAuthLimiter()


def webhook_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with the error code beside the message; anything else is re-raised by DRF."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = {"error": exc.default_code, "detail": str(exc.detail)}
    return response


class ASCIIJSONRenderer(JSONRenderer):
    # A 400 quotes the offending value back; a lone surrogate in it ("\ud800" in the body) has no
    # UTF-8 encoding and would fail the response, while escaped it is valid JSON.
    ensure_ascii = True


class WebhookView(APIView):
    authentication_classes = [PagecallWebhookAuthentication]
    permission_classes = [IsPagecallRoom]
    throttle_classes: list[Any] = []
    renderer_classes = [ASCIIJSONRenderer]
    # No parser: the body is stored as it came, whatever its content type, once its size is
    # checked, and then validated by the serializer (processing.parse).
    parser_classes: list[Any] = []
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

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            exc = self._count_failed_authentication(exc)
        response = super().handle_exception(exc)
        if isinstance(exc, TooManyFailedAuthentications):
            # Django's request logger would write a line per 429 (django.utils.log.log_response
            # skips a response marked so): the limit is also on what failures cost in logs.
            setattr(response, "_has_been_logged", True)  # noqa: B010
        return response

    def _count_failed_authentication(self, exc: exceptions.APIException) -> exceptions.APIException:
        """The refusal to answer: the same one, or 429 once the address is over its limit."""
        remote_addr = self.request._request.META.get("REMOTE_ADDR")
        count, limit, left = failed_auth_limiter.record_failure(remote_addr)
        if limit and count > limit:
            if count == limit + 1:  # one line per address and minute, however many follow
                logger.warning(
                    "Webhook: more than %s failed authentications this minute from %s; "
                    "refusing with 429 (and logging no more) for %ss",
                    limit,
                    remote_addr,
                    left,
                )
            return TooManyFailedAuthentications(wait=left)
        if isinstance(exc, exceptions.AuthenticationFailed):
            logger.warning(
                "Webhook refused: invalid credentials (room header %r) from %s",
                self.request.headers.get(ROOM_HEADER, "")[:32],
                remote_addr,
            )
        return exc

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
        encoding = headers.get("Content-Encoding", "").strip().lower()
        unread = partial(processing.refuse, room_pk, headers, remote_addr, using)
        if size > limit:
            outcome = processing.refuse_oversized(room_pk, size, headers, remote_addr, using)
        elif not size and "chunked" in headers.get("Transfer-Encoding", "").lower():
            # Django reads Content-Length bytes, so a chunked body would be read as empty.
            error = "a chunked body without Content-Length is not read; send Content-Length"
            outcome = unread(411, DeliveryResult.UNREADABLE, error)
        elif encoding not in ("", "identity", *DECOMPRESSORS):
            error = f"Content-Encoding {encoding!r} is not taken (gzip, deflate or none)"
            outcome = unread(415, DeliveryResult.UNREADABLE, error, django_request.body)
        else:
            raw = django_request.body
            if encoding in DECOMPRESSORS:
                decoded = inflate(raw, encoding, limit)
                if decoded is None:
                    error = f"a {encoding} body that is corrupt or inflates past {limit} bytes"
                    return self.answer(unread(415, DeliveryResult.UNREADABLE, error))
                raw = decoded
            outcome = processing.receive(room_pk, raw, headers, remote_addr, using)
        return self.answer(outcome)

    @staticmethod
    def answer(outcome: processing.Outcome) -> Response:
        return Response(outcome.body, status=outcome.status)


#: ``zlib`` window bits of each Content-Encoding the endpoint reads.
DECOMPRESSORS: Final = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


def inflate(raw: bytes, encoding: str, limit: int) -> bytes | None:
    """``raw`` decompressed, or None when it is corrupt or inflates past ``limit`` bytes (a
    small body must not become a large one in memory)."""
    inflater = zlib.decompressobj(DECOMPRESSORS[encoding])
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error:
        return None
    if len(body) > limit or inflater.unconsumed_tail or not inflater.eof:
        return None
    return body


@cache
def _openapi_template() -> dict[str, Any]:
    text = files("django_pagecall.webhooks").joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@require_safe
def openapi_document(request: HttpRequest) -> JsonResponse:
    """The OpenAPI description of the webhook endpoint (``webhooks/openapi.json``), with its
    server set to where this site mounts the app, as a path: no Host header is trusted."""
    document = copy.deepcopy(_openapi_template())
    namespace = request.resolver_match.namespace if request.resolver_match else "pagecall"
    webhook = reverse(f"{namespace}:webhook" if namespace else "webhook")
    document["servers"] = [{"url": webhook.removesuffix("webhook/").rstrip("/") or "/"}]
    return JsonResponse(document, json_dumps_params={"indent": 2})
