"""A site that forgot to include the app's URLs (the webhook URL check must say so)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
