"""URLs to include under a prefix of the host's choice: ``path("pagecall/", include("django_pagecall.urls"))``.

``webhook/`` is the endpoint Pagecall calls (set ``PAGECALL["WEBHOOK_URL"]`` to its absolute URL);
``join/``, ``replay/`` and ``room/`` are the pages people use, ``api/`` the front ends' API;
``webhook/openapi.json`` describes the endpoints in OpenAPI 3.1 (docs/joining.md, docs/webhooks.md).
"""

from django.urls import URLPattern, path

from . import api, views
from .webhooks.views import WebhookView, openapi_document

app_name = "pagecall"

urlpatterns: list[URLPattern] = [
    path("webhook/", WebhookView.as_view(), name="webhook"),
    path("webhook/openapi.json", openapi_document, name="webhook-openapi"),
    path("join/<int:pk>/", views.join, name="join"),
    path("replay/<int:pk>/", views.replay, name="replay"),
    path("room/<int:pk>/", views.room, name="room"),
    path("api/rooms/", api.RoomList.as_view(), name="api-room-list"),
    path("api/rooms/<int:pk>/", api.RoomDetail.as_view(), name="api-room-detail"),
    path("api/rooms/<int:pk>/join/", api.RoomJoin.as_view(), name="api-room-join"),
]
