"""URLs of the accounts app (under /api/v1/). Only exact paths: other apps add
``users/me/...`` and ``users/<id>/...`` sub-resources in their own urls.py."""
from django.urls import path

from . import views

urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/login/", views.LoginView.as_view(), name="auth-login"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/otp/request/", views.OTPRequestView.as_view(), name="auth-otp-request"),
    path("auth/otp/verify/", views.OTPVerifyView.as_view(), name="auth-otp-verify"),
    path("users/me/", views.MeView.as_view(), name="user-me"),
    path("users/<id:pk>/", views.PublicUserView.as_view(), name="user-detail"),
    path("skills/", views.SkillListView.as_view(), name="skill-list"),
]
