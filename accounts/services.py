"""Writes of the accounts app: registration, login and logout, e-mail one-time
codes, and the caller's own profile edits. Each is keyword-only and runs in one
transaction; database constraint errors come back as API errors, never a 500."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth import logout as django_logout
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.text import slugify
from rest_framework import exceptions
from rest_framework.authtoken.models import Token

from core.envelope import Conflict, ServiceUnavailable
from core.throttling import login_failures

from .models import EmailOTP, Profile, Role, Skill, User

logger = logging.getLogger("shiftboard.accounts")

# What PATCH /users/me/ may change; anything else (email, role, is_staff, ratings)
# is read-only whatever a caller sends.
EDITABLE_USER_FIELDS = frozenset({"first_name", "last_name", "phone"})
EDITABLE_PROFILE_FIELDS = frozenset({"bio", "city", "hourly_rate"})

DUPLICATE_EMAIL = "An account with this e-mail address already exists."
BAD_CREDENTIALS = "Unable to log in with the provided e-mail address and password."
TOO_MANY_FAILURES = "Too many failed logins for this account. Try again later."


def email_normalize(email: str) -> str:
    """E-mail addresses are stored lower-case: the unique index is then case-insensitive."""
    return email.strip().lower()


# --- registration and login ------------------------------------------------------

def user_register(
    *, email: str, password: str, role: str, first_name: str, last_name: str
) -> tuple[User, str]:
    """Create a user with an empty profile and a token; ``(user, token key)``.
    A taken e-mail address (in any letter case) is a 409, also when two
    registrations race (the unique index decides)."""
    email = email_normalize(email)
    if role not in (Role.CLIENT, Role.WORKER):
        raise exceptions.ValidationError({"role": ["Must be client or worker."]})
    candidate = User(email=email, first_name=first_name, last_name=last_name, role=role)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError({"password": list(exc.messages)}) from exc
    # No "exists?" query first: the unique index on the (lower-cased) e-mail is the
    # one check, and it also decides between two registrations that race.
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, role=role, first_name=first_name, last_name=last_name
            )
            Profile.objects.create(user=user)
            token = Token.objects.create(user=user)
    except IntegrityError as exc:
        raise Conflict(DUPLICATE_EMAIL) from exc
    return user, token.key


def login_budget_check(email: str) -> None:
    """A 429 once the address has spent its budget of failed logins in the current
    window (``THROTTLE_LOGIN_ACCOUNT``, from any client address, API and admin
    alike), whether or not the account exists and whatever the password."""
    if login_failures.exhausted(email_normalize(email)):
        raise exceptions.Throttled(wait=login_failures.wait(), detail=TOO_MANY_FAILURES)


def user_login(*, request, email: str, password: str) -> tuple[User, str]:
    """Check the credentials and return ``(user, token key)``. A wrong password, an
    unknown address and an inactive account get the same answer (and, through
    Django's backend, about the same time). Each failure spends one of the
    address's failed-login budget (``login_budget_check``)."""
    email = email_normalize(email)
    login_budget_check(email)
    user = authenticate(request, email=email, password=password)
    if user is None:
        login_failures.record_failure(email)
        raise exceptions.ValidationError({"non_field_errors": [BAD_CREDENTIALS]})
    with transaction.atomic():
        token, _ = Token.objects.get_or_create(user=user)
        # update(): last_login is shown by no endpoint, so no cache scope to bump.
        User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return user, token.key


def user_logout(*, user: User, request=None) -> None:
    """Revoke the user's token (every client holding it is logged out) and end the
    session of ``request`` (a Django ``HttpRequest``), if it has one: a caller
    signed in both ways (the browsable API, the admin) is signed out of both."""
    Token.objects.filter(user=user).delete()
    if request is not None and hasattr(request, "session"):
        django_logout(request)


# --- e-mail one-time codes -------------------------------------------------------

# Wrong tries count against the user for this long, across codes.
ATTEMPT_WINDOW = timedelta(hours=1)
TOO_MANY_TRIES = "Too many wrong tries: verification is locked for an hour from the first of them. Then request a new code."

def email_otp_hash(*, user_id: int, code: str) -> str:
    """Keyed hash (HMAC-SHA256 with SECRET_KEY) of a code: a database dump alone
    does not let anyone recover or brute-force the 6 digits."""
    return salted_hmac("accounts.EmailOTP", f"{user_id}:{code}", algorithm="sha256").hexdigest()


def email_otp_request(*, user: User) -> EmailOTP:
    """Make a new 6-digit code, retire the user's earlier unused ones, store only
    the hash and e-mail the code. Returns the stored row (which has no code)."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = timezone.now()
    with transaction.atomic():
        # update(): codes are cached nowhere, so there is no scope to bump.
        EmailOTP.objects.unused_for(user).filter(expires_at__gt=now).update(expires_at=now)
        otp = EmailOTP.objects.create(
            user=user,
            code_hash=email_otp_hash(user_id=user.pk, code=code),
            created_at=now,
            expires_at=now + timedelta(seconds=EmailOTP.LIFETIME_SECONDS),
        )
    minutes = EmailOTP.LIFETIME_SECONDS // 60
    try:
        send_mail(
            subject="Your Shiftboard verification code",
            message=f"Your verification code is {code}. It expires in {minutes} minutes.",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
        )
    except Exception as exc:  # noqa: BLE001 - any mail transport failure
        logger.warning("could not send a verification code to user %s: %s", user.pk, exc)
        raise ServiceUnavailable("The code could not be sent. Try again later.") from exc
    return otp


def email_otp_verify(*, user: User, code: str) -> None:
    """Check ``code`` against the user's newest code and mark the e-mail verified.

    The budget of wrong tries is the user's, not the code's: at most
    ``EmailOTP.MAX_ATTEMPTS`` wrong tries over all codes made in the last
    ``ATTEMPT_WINDOW``, after which even the right code is refused until the
    window has passed. Asking for a new code does not give new tries (it did: 5
    tries per code and a new code per request made 25 guesses a minute). The
    newest code row is locked while it is checked (only it can verify), so
    concurrent tries are counted one by one. The count is committed before the
    400 goes out (the error is raised after the transaction, so it does not roll
    the count back).
    """
    now = timezone.now()
    error = None
    with transaction.atomic():
        otp = EmailOTP.objects.latest_for(user).select_for_update().first()
        if otp is None or otp.used_at is not None:
            error = "There is no active code. Request a new one."
        elif otp.expires_at <= now:
            error = "This code has expired. Request a new one."
        elif (spent := EmailOTP.objects.wrong_tries_since(user, now - ATTEMPT_WINDOW)) >= EmailOTP.MAX_ATTEMPTS:
            error = TOO_MANY_TRIES
        elif not constant_time_compare(otp.code_hash, email_otp_hash(user_id=user.pk, code=code)):
            EmailOTP.objects.filter(pk=otp.pk).update(attempts=F("attempts") + 1)
            left = EmailOTP.MAX_ATTEMPTS - spent - 1
            error = f"Wrong code. {left} {'try' if left == 1 else 'tries'} left." if left else f"Wrong code. {TOO_MANY_TRIES}"
        else:
            otp.used_at = now
            otp.save(update_fields=["used_at"])
            if not user.is_email_verified:
                user.is_email_verified = True
                user.save(update_fields=["is_email_verified"])  # post_save bumps the user's scopes
    if error:
        raise exceptions.ValidationError({"code": [error]})


# --- the caller's own profile ------------------------------------------------------

class UnknownSkills(ValueError):
    """Some of the given skill names/slugs name no skill."""

    def __init__(self, unknown: Sequence[str]):
        self.unknown = list(unknown)
        super().__init__("Unknown skill(s): " + ", ".join(self.unknown) + ".")


def skills_resolve(names_or_slugs: Iterable[str]) -> list[Skill]:
    """Skills named by name, slug or slugified name, in the given order without
    duplicates; ``UnknownSkills`` lists those that name none. One query."""
    values = list(dict.fromkeys(v.strip() for v in names_or_slugs))
    found = list(Skill.objects.matching(values))
    by_name = {s.name: s for s in found}
    by_slug = {s.slug: s for s in found}
    skills, unknown = {}, []
    for value in values:
        skill = by_name.get(value) or by_slug.get(value) or by_slug.get(slugify(value))
        if skill is None:
            unknown.append(value)
        else:
            skills[skill.pk] = skill
    if unknown:
        raise UnknownSkills(unknown)
    return list(skills.values())


def user_update(
    *,
    user: User,
    user_fields: Mapping[str, Any],
    profile_fields: Mapping[str, Any],
    skills: Sequence[str] | None = None,
) -> None:
    """Apply the caller's edits to their own user row and profile (created if
    missing). ``skills`` replaces the profile's skills when given. Only the
    fields in EDITABLE_USER_FIELDS / EDITABLE_PROFILE_FIELDS can change."""
    forbidden = (set(user_fields) - EDITABLE_USER_FIELDS) | (set(profile_fields) - EDITABLE_PROFILE_FIELDS)
    if forbidden:
        raise ValueError(f"not editable through user_update: {sorted(forbidden)}")
    wanted = None
    if skills is not None:
        try:
            wanted = skills_resolve(skills)
        except UnknownSkills as exc:
            raise exceptions.ValidationError({"profile": {"skills": [str(exc)]}}) from exc
    try:
        with transaction.atomic():
            # Lock the user row: concurrent edits of one profile apply one after the other.
            locked = User.objects.select_for_update().get(pk=user.pk)
            if user_fields:
                for name, value in user_fields.items():
                    setattr(locked, name, value)
                locked.save(update_fields=list(user_fields))  # post_save bumps user:<id>, users
            profile, _ = Profile.objects.get_or_create(user=locked)
            if profile_fields:
                for name, value in profile_fields.items():
                    setattr(profile, name, value)
                profile.save(update_fields=list(profile_fields))  # post_save bumps user:<id>
            if wanted is not None:
                _replace_profile_skills(profile, wanted)
    except IntegrityError as exc:
        raise exceptions.ValidationError({"non_field_errors": ["The profile could not be saved."]}) from exc


def _replace_profile_skills(profile: Profile, skills: Sequence[Skill]) -> None:
    """Set the profile's skills (only the difference is written). m2m_changed
    bumps ``user:<id>`` only: Skill is tracked with ``shows_reverse_m2m=False``
    (accounts/cache.py), so the global ``skills`` scope is left alone."""
    profile.skills.set(skills)
