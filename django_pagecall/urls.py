"""URLs to include under a prefix of the host's choice: ``path("pagecall/", include("django_pagecall.urls"))``.

``webhook/`` (``pagecall:webhook``) is the endpoint Pagecall calls; set
``PAGECALL["WEBHOOK_URL"]`` to its absolute URL. ``webhook/openapi.json``
(``pagecall:webhook-openapi``) describes it in OpenAPI 3.1.
"""

from django.urls import URLPattern, path

from .webhooks.views import WebhookView, openapi_document

app_name = "pagecall"

urlpatterns: list[URLPattern] = [
    path("webhook/", WebhookView.as_view(), name="webhook"),
    path("webhook/openapi.json", openapi_document, name="webhook-openapi"),
]
