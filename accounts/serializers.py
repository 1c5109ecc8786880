"""Serializers of the accounts app. ``UserLiteSerializer`` is the PublicUser-lite
shape every other app embeds (id, names, rating_avg): it reads only columns of
the user row, so a ``select_related`` of the user is all a list needs.

The read serializers (Me, PublicUser, Skill) only touch what the named querysets
loaded (``UserQuerySet.for_me`` / ``for_public``): they never query. The write
serializers validate request bodies; the services in ``accounts.services`` write.
"""
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.representation import Row, decimal_repr, prefetched

from .models import Profile, Role, Skill, User, rating_average

MAX_SKILLS_PER_PROFILE = 50


class UserLiteSerializer(serializers.ModelSerializer):
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "first_name", "last_name", "rating_avg"]
        read_only_fields = fields


class SkillSerializer(serializers.ModelSerializer):
    class Meta:
        model = Skill
        fields = ["id", "name", "slug"]
        read_only_fields = fields


class ProfileSerializer(serializers.ModelSerializer):
    """Profile: bio, city, skill names, hourly rate."""

    skills = serializers.SerializerMethodField()

    class Meta:
        model = Profile
        fields = ["bio", "city", "skills", "hourly_rate"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_skills(self, profile) -> list[str]:
        # Prefetched by the named querysets; an unsaved (missing) profile has none.
        return [skill.name for skill in profile.skills.all()] if profile.pk else []


class _OwnProfileField(ProfileSerializer):
    """The user's profile, or an empty one for a user who has none yet (e.g. made
    with ``createsuperuser``): the shape stays the same."""

    def get_attribute(self, instance):
        try:
            return instance.profile
        except Profile.DoesNotExist:
            return Profile(user=instance)


class PublicUserSerializer(serializers.ModelSerializer):
    """PublicUser: never e-mail or phone."""

    profile = _OwnProfileField(read_only=True)
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "first_name", "last_name", "role", "profile", "rating_avg", "rating_count", "completed_jobs"]
        read_only_fields = fields


class MeSerializer(PublicUserSerializer):
    """Me: the caller's own representation, PublicUser plus private fields."""

    class Meta(PublicUserSerializer.Meta):
        fields = [
            "id",
            "email",
            "role",
            "first_name",
            "last_name",
            "phone",
            "is_email_verified",
            "date_joined",
            "profile",
            "rating_avg",
            "rating_count",
            "completed_jobs",
        ]
        read_only_fields = fields


class AuthResultSerializer(serializers.Serializer):
    """``{token, user: Me}``: the answer to register and login."""

    token = serializers.CharField()
    user = MeSerializer()


# --- fast representations (core/representation.py): the same bytes as the
# serializers above, without their per-field machinery ---------------------------


def user_lite_repr(user) -> dict:
    """``UserLiteSerializer(user).data``."""
    return user_lite_value(user.id, user.first_name, user.last_name, user.rating_sum, user.rating_count)


USER_LITE_COLUMNS = ("id", "first_name", "last_name", "rating_sum", "rating_count")


def user_lite_columns(prefix: str) -> tuple[str, ...]:
    """The ``values_list`` columns of the user-lite at ``prefix`` (e.g. ``payer``),
    read back by ``user_lite_value``."""
    return tuple(f"{prefix}__{column}" for column in USER_LITE_COLUMNS)


def user_lite_value(user_id, first_name, last_name, rating_sum, rating_count) -> dict:
    """``user_lite_repr`` from the ``user_lite_columns`` values."""
    return {
        "id": user_id,
        "first_name": first_name,
        "last_name": last_name,
        "rating_avg": decimal_repr(rating_average(rating_sum, rating_count), 2, 3),
    }


def public_user_repr(user) -> Row:
    """``PublicUserSerializer(user).data`` for a user of ``UserQuerySet.for_public``."""
    try:
        profile = user.profile
    except Profile.DoesNotExist:
        profile = None
    return Row(
        id=user.id,
        first_name=user.first_name,
        last_name=user.last_name,
        role=user.role,
        profile={
            "bio": profile.bio if profile else "",
            "city": profile.city if profile else "",
            "skills": [skill.name for skill in prefetched(profile, "skills")] if profile else [],
            "hourly_rate": decimal_repr(profile.hourly_rate, 2, 8) if profile else None,
        },
        rating_avg=decimal_repr(user.rating_avg, 2, 3),
        rating_count=user.rating_count,
        completed_jobs=user.completed_jobs,
    )


# The columns ``public_user_value_repr`` reads: the user and its profile (none when
# the user has no profile: the LEFT JOIN's NULLs).
PUBLIC_USER_COLUMNS = (
    "id", "first_name", "last_name", "role", "profile__id", "profile__bio", "profile__city",
    "profile__hourly_rate", "rating_sum", "rating_count", "completed_jobs",
    "profile__skills__name",
)
# One row per skill of the profile (one row with none), by name as ``Skill`` orders them.
PUBLIC_USER_ORDER = ("profile__skills__name",)


def public_user_value_repr(found) -> Row | None:
    """``PublicUserSerializer(user).data`` for the user of ``found`` (rows of
    ``PUBLIC_USER_COLUMNS`` read from ``UserQuerySet.for_public`` narrowed to an
    id, ordered by ``PUBLIC_USER_ORDER``: one row per skill): what
    ``public_user_repr`` gives, without a User, a Profile and a Skill per skill,
    from one query. ``None``: no such user."""
    if not found:
        return None
    (user_id, first_name, last_name, role, profile_id, bio, city, hourly_rate, rating_sum, rating_count,
     completed_jobs, _) = found[0]
    skills = [row[-1] for row in found if row[-1] is not None]
    return Row(
        id=user_id,
        first_name=first_name,
        last_name=last_name,
        role=role,
        profile={
            "bio": bio if profile_id is not None else "",
            "city": city if profile_id is not None else "",
            "skills": skills,
            "hourly_rate": decimal_repr(hourly_rate, 2, 8),
        },
        rating_avg=decimal_repr(rating_average(rating_sum, rating_count), 2, 3),
        rating_count=rating_count,
        completed_jobs=completed_jobs,
    )


# --- request bodies -----------------------------------------------------------------

_name = {"max_length": 150, "allow_blank": False}


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    # Bounded: hashing a megabyte-long password is a cheap way to burn CPU.
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    role = serializers.ChoiceField(choices=[Role.CLIENT.value, Role.WORKER.value])
    first_name = serializers.CharField(**_name)
    last_name = serializers.CharField(**_name)


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


class OTPVerifySerializer(serializers.Serializer):
    code = serializers.RegexField(r"^[0-9]{6}$", max_length=6, error_messages={"invalid": "Enter the 6-digit code."})


class OTPSentSerializer(serializers.Serializer):
    expires_at = serializers.DateTimeField()


class ProfileUpdateSerializer(serializers.Serializer):
    bio = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    city = serializers.CharField(max_length=100, allow_blank=True, required=False)
    skills = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=MAX_SKILLS_PER_PROFILE,
        required=False,
        help_text="Skill names or slugs; replaces the profile's skills.",
    )
    hourly_rate = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, allow_null=True, required=False
    )


class MeUpdateSerializer(serializers.Serializer):
    """What PATCH /users/me/ may change. Other keys (email, role, is_staff, id,
    is_email_verified, ratings) are ignored."""

    first_name = serializers.CharField(required=False, **_name)
    last_name = serializers.CharField(required=False, **_name)
    phone = serializers.CharField(
        max_length=32,
        allow_blank=True,
        required=False,
        validators=[
            RegexValidator(
                r"^\+?[0-9][0-9 ().\-/]*$", "Enter a phone number: digits, spaces, + ( ) . - /."
            )
        ],
    )
    profile = ProfileUpdateSerializer(required=False)
