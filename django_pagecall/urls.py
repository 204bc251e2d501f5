"""URLs to include under a prefix of the host's choice: ``path("pagecall/", include("django_pagecall.urls"))``.

The webhook view (``pagecall:webhook``) is added with the webhook work.
"""

from django.urls import URLPattern

app_name = "pagecall"

urlpatterns: list[URLPattern] = []
