"""Cache scopes of the accounts app, and what a change to its models touches.

Scopes: ``users`` (every list that shows a user's name or rating: job,
application, payment and review lists), ``user:<id>`` (that user's public profile
``/users/<id>/`` and their ``/users/me/``; a profile edit, its skills included,
bumps only this), ``skills`` (the skill list, and every representation that shows
skill names: profiles and job lists; bumped when a skill itself is created,
renamed or deleted). ``categories`` lives in jobs.
"""
from core.signals import track

from .models import EmailOTP, Profile, Skill, User

USERS = "users"
SKILLS = "skills"


def user_scope(user_id) -> str:
    return f"user:{user_id}"


def user_scopes(user: User):
    # A new name or rating shows in every list that carries this user.
    return [user_scope(user.pk), USERS]


def profile_scopes(profile: Profile):
    # Profile fields (skills, city, bio) appear in public profiles only.
    return [user_scope(profile.user_id)]


def skill_scopes(skill: Skill):
    return [SKILLS]


def public_user_scopes(view, request, pk=None, **kwargs):
    return [user_scope(pk), SKILLS]


def me_scopes(view, request, **kwargs):
    return [user_scope(request.user.pk), SKILLS]


def skill_list_scopes(view, request, **kwargs):
    return [SKILLS]


track(User, user_scopes)
track(Profile, profile_scopes)
# No Skill representation lists the profiles or jobs that have it: linking a
# profile or a job to a skill bumps that profile's / job's scopes, not ``skills``
# (which would retire every skill list, profile and job list at once).
track(Skill, skill_scopes, shows_reverse_m2m=False)
# OTPs are never cached; tracked so that a test can prove every model is covered.
track(EmailOTP, lambda otp: [])
