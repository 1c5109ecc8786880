"""Cache scopes of the accounts app, and what a change to its models touches.

Scopes: ``user:<id>`` (that user's public profile ``/users/<id>/`` and their
``/users/me/``, and - as a *row scope* (docs/cache.md) - every list or detail that
shows the user-lite of that user: job, application, payment and review lists; a
profile edit, its skills included, bumps only this), ``skills`` (the skill list, and every representation that shows
skill names: profiles and job lists; bumped when a skill itself is created,
renamed or deleted). ``categories`` lives in jobs.

There is no scope for "every list showing a user": those lists name the users
they show as row scopes, so a new name or rating bumps ``user:<id>`` only and
retires just the entries that show that user.
"""
from rest_framework.authtoken.models import Token, TokenProxy

from core.cache import auth_scope
from core.signals import track

from .models import ApiToken, EmailOTP, Profile, Skill, User

SKILLS = "skills"


def user_scope(user_id) -> str:
    return f"user:{user_id}"


def user_scopes(user: User):
    # A new name or rating shows in every entry that carries this user: those
    # entries hold ``user:<id>`` as a row scope (or as a coarse scope: profiles).
    return [user_scope(user.pk)]


def profile_scopes(profile: Profile):
    # Profile fields (skills, city, bio) appear in public profiles only.
    return [user_scope(profile.user_id)]


def token_scopes(token: Token):
    # A token created or deleted (logout, the admin) retires the cached token ->
    # user entries of its user (core/cache/callers.py): the next request with an
    # old token goes to the database and gets its 401.
    return [auth_scope(token.user_id)]


def skill_scopes(skill: Skill):
    return [SKILLS]


track(User, user_scopes)
track(Profile, profile_scopes)
# No Skill representation lists the profiles or jobs that have it: linking a
# profile or a job to a skill bumps that profile's / job's scopes, not ``skills``
# (which would retire every skill list, profile and job list at once).
track(Skill, skill_scopes, shows_reverse_m2m=False)
# OTPs are never cached; tracked so that a test can prove every model is covered.
track(EmailOTP, lambda otp: [])
track(Token, token_scopes)
track(TokenProxy, token_scopes)  # the admin's token pages
track(ApiToken, token_scopes)  # the admin's token pages (keys shown masked): proxies send their own signals
