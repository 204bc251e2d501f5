"""The example site's URLs: its "my rooms" page, log in and out, the admin, and the app's URLs
(the webhook, the join, replay and room pages, and the API for front ends)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.my_rooms, name="my-rooms"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("pagecall/", include("django_pagecall.urls")),
]
