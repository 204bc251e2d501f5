"""The example site's URLs: the admin, the app's webhook, and the host pages in ``views``."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.my_rooms, name="my-rooms"),
    path("rooms/<int:pk>/join/", views.join, name="join"),
    path("rooms/<int:pk>/replay/", views.replay, name="replay"),
    path("emulated-pagecall/<str:page>", views.emulated_meeting, name="emulated-meeting"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("pagecall/", include("django_pagecall.urls")),
]
