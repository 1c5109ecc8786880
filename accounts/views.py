"""Views of the accounts app: auth (register, login, logout, e-mail codes), the
caller's own user (/users/me/), public profiles and the skill list. Thin: each
picks a named queryset and a serializer, and calls a service for writes."""
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView, RetrieveAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from core.cache import Query, cached_response
from core.representation import json_accepted, lookup_values
from core.throttling import LoginThrottle, RegisterThrottle, UserScopedThrottle, login_failures

from . import services
from .cache import SKILLS, user_scope
from .models import Skill, User
from .serializers import (
    PUBLIC_USER_COLUMNS,
    PUBLIC_USER_ORDER,
    AuthResultSerializer,
    LoginSerializer,
    MeSerializer,
    MeUpdateSerializer,
    OTPSentSerializer,
    OTPVerifySerializer,
    PublicUserSerializer,
    RegisterSerializer,
    SkillSerializer,
    public_user_value_repr,
)


def _me(user) -> User:
    """The caller, fresh from the database, in the Me shape's queryset (2 queries)."""
    return User.objects.for_me().get(pk=user.pk)


# --- what each cached GET depends on (coarse scopes: part of the key) -----------


def me_scopes(view, request, **kwargs):
    return [user_scope(request.user.pk), SKILLS]


def public_user_scopes(view, request, pk=None, **kwargs):
    return [user_scope(pk), SKILLS]


def skill_list_scopes(view, request, **kwargs):
    return [SKILLS]


class RegisterView(GenericAPIView):
    """Register a new client or worker; the answer carries the new user's token."""

    # No authentication: a stale token header must not stop anyone registering.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [RegisterThrottle]
    serializer_class = RegisterSerializer

    @extend_schema(
        request=RegisterSerializer,
        responses={
            201: AuthResultSerializer,
            409: OpenApiResponse(description="Conflict: an account with this e-mail address exists."),
        },
    )
    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        user, token = services.user_register(**body.validated_data)
        return Response({"user": MeSerializer(_me(user)).data, "token": token}, status=status.HTTP_201_CREATED)


class LoginView(GenericAPIView):
    """A token for an e-mail address and password (rate-limited per IP address)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]
    serializer_class = LoginSerializer

    @extend_schema(request=LoginSerializer, responses={200: AuthResultSerializer})
    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        user, token = services.user_login(request=request, **body.validated_data)
        return Response({"token": token, "user": MeSerializer(_me(user)).data})


class LogoutView(GenericAPIView):
    """Revoke the caller's token (it no longer authenticates anyone) and end the
    caller's session, if signed in by one."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: OpenApiResponse(description="Token revoked.")})
    def post(self, request):
        services.user_logout(user=request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OTPRequestView(GenericAPIView):
    """E-mail the caller a 6-digit code that verifies their e-mail address."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [UserScopedThrottle]
    throttle_scope = "otp"

    @extend_schema(
        request=None,
        responses={
            202: OTPSentSerializer,
            503: OpenApiResponse(description="The code could not be sent; try again later."),
        },
    )
    def post(self, request):
        otp = services.email_otp_request(user=request.user)
        response = Response(OTPSentSerializer(otp).data, status=status.HTTP_202_ACCEPTED)
        response.envelope_message = "A verification code was sent to your e-mail address."
        return response


class OTPVerifyView(GenericAPIView):
    """Check the e-mailed code and mark the caller's e-mail address verified. A
    wrong code is a 400; after 5 wrong tries the code is locked (request a new one)."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [UserScopedThrottle]
    throttle_scope = "otp_verify"
    serializer_class = OTPVerifySerializer

    @extend_schema(request=OTPVerifySerializer, responses={200: MeSerializer})
    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.email_otp_verify(user=request.user, code=body.validated_data["code"])
        return Response(MeSerializer(_me(request.user)).data)


class MeView(GenericAPIView):
    """The caller's own user: read it, or change names, phone and profile fields.
    E-mail address, role, staff flag and ids cannot be changed here."""

    # GET budget 3: token, user with profile, skills.

    permission_classes = [IsAuthenticated]
    serializer_class = MeSerializer

    @extend_schema(responses=MeSerializer)
    @cached_response(me_scopes, private=True, query=Query(paginated=False))
    def get(self, request):
        return Response(MeSerializer(_me(request.user)).data)

    @extend_schema(request=MeUpdateSerializer, responses=MeSerializer)
    def patch(self, request):
        body = MeUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user_fields = dict(body.validated_data)
        profile_fields = dict(user_fields.pop("profile", {}))
        skills = profile_fields.pop("skills", None)
        services.user_update(user=request.user, user_fields=user_fields, profile_fields=profile_fields, skills=skills)
        return Response(MeSerializer(_me(request.user)).data)


class PublicUserView(RetrieveAPIView):
    """A user's public profile (never e-mail address or phone). Anyone may read it."""

    # Budget 1 anonymous: the user with its profile and skills (one row per skill).

    permission_classes = [AllowAny]
    serializer_class = PublicUserSerializer
    # The same queryset for every caller: its reads by id are compiled once
    # (core/representation.py, static_queryset).
    static_queryset_for = ("get",)

    def get_queryset(self):
        return User.objects.for_public()

    @cached_response(public_user_scopes)
    def retrieve(self, request, *args, **kwargs):
        if json_accepted(request):
            # JSON: the serializer's bytes from plain row values, without model
            # instances or its per-field machinery (core/representation.py). The
            # queryset and lookup get_object() reads; AllowAny has no object check.
            row = public_user_value_repr(lookup_values(self, *PUBLIC_USER_COLUMNS, order_by=PUBLIC_USER_ORDER))
            if row is None:
                raise Http404
            return Response(row)
        return Response(PublicUserSerializer(self.get_object()).data)


class SkillListView(ListAPIView):
    """Every skill, by name. Anyone may read it."""

    # Budget 2 anonymous: COUNT and page.

    permission_classes = [AllowAny]
    serializer_class = SkillSerializer
    filter_backends = []

    def get_queryset(self):
        return Skill.objects.for_list()

    @cached_response(skill_list_scopes)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


def admin_login(request, extra_context=None):
    """The admin's login page, throttled like the API login (it is the same
    password): the per-IP ``login`` throttle and the per-account failed-login
    budget, shared with POST /auth/login/, so neither door adds guesses to the
    other. Answers 429 (plain text, ``Retry-After``) when spent."""
    from django.contrib import admin
    from django.http import HttpResponse

    def too_many(wait) -> HttpResponse:
        seconds = max(1, int(wait or 1))
        response = HttpResponse(
            f"Too many login attempts. Try again in {seconds} seconds.\n", status=429, content_type="text/plain"
        )
        response["Retry-After"] = str(seconds)
        return response

    if request.method != "POST":
        return admin.site.login(request, extra_context)
    throttle = LoginThrottle()
    if not throttle.allow_request(request, None):
        return too_many(throttle.wait())
    email = services.email_normalize(str(request.POST.get("username", "")))
    if email and login_failures.exhausted(email):
        return too_many(login_failures.wait())
    response = admin.site.login(request, extra_context)
    # Success redirects (302); a failed login re-renders the form (200).
    if email and response.status_code == 200 and not request.user.is_authenticated:
        login_failures.record_failure(email)
    return response
