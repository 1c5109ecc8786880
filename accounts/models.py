"""Users (e-mail login, client or worker), their profiles and skills, and
e-mail one-time codes."""
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.authtoken.models import TokenProxy


class Role(models.TextChoices):
    CLIENT = "client", "Client"
    WORKER = "worker", "Worker"


class UserQuerySet(models.QuerySet):
    def for_public(self):
        """Active users with profile (1 query) and its skills (+1). GET /users/{id}/ reads
        it as plain values, a row per skill: budget 1 (+1 token)."""
        return self.filter(is_active=True).select_related("profile").prefetch_related("profile__skills")

    def for_me(self):
        """The caller with profile (1 query) and its skills (+1): GET /users/me/ budget 3 with the token."""
        return self.select_related("profile").prefetch_related("profile__skills")


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("role", Role.CLIENT)
        return self._create_user(email, password, **extra)


def rating_average(rating_sum: int, rating_count: int) -> Decimal | None:
    """A user's average rating from its two counters (``User.rating_avg``; the
    job rows read the counters as plain values, jobs/serializers.py)."""
    if not rating_count:
        return None
    return (Decimal(rating_sum) / Decimal(rating_count)).quantize(Decimal("0.01"))


class User(AbstractBaseUser, PermissionsMixin):
    # Stored lower-cased (the manager and serializers normalise), so this unique
    # index is also the case-insensitive one login uses.
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.WORKER)
    is_email_verified = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # Denormalised reputation, kept up to date by the ratings and jobs services in
    # the same transaction as the write, so no list needs a per-row aggregate.
    rating_sum = models.PositiveIntegerField(default=0)
    rating_count = models.PositiveIntegerField(default=0)
    completed_jobs = models.PositiveIntegerField(default=0)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["first_name", "last_name"]

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="user_role_valid"),
            models.CheckConstraint(
                condition=models.Q(rating_sum__lte=models.F("rating_count") * 5),
                name="user_rating_sum_consistent",
            ),
        ]

    def __str__(self):
        return self.email

    @property
    def rating_avg(self) -> Decimal | None:
        return rating_average(self.rating_sum, self.rating_count)

    @property
    def is_client(self) -> bool:
        return self.role == Role.CLIENT

    @property
    def is_worker(self) -> bool:
        return self.role == Role.WORKER


class SkillQuerySet(models.QuerySet):
    def for_list(self):
        """All skills by name: GET /skills/ budget 2 (COUNT + page; +1 token)."""
        return self.order_by("name", "id")

    def matching(self, names_or_slugs):
        """Skills whose name or slug is one of ``names_or_slugs`` (slugs as given or slugified)."""
        values = list(names_or_slugs)
        slugs = set(values) | {slugify(value) for value in values}
        return self.filter(models.Q(name__in=values) | models.Q(slug__in=slugs))


class Skill(models.Model):
    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)

    objects = models.Manager.from_queryset(SkillQuerySet)()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Profile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="profile")
    bio = models.TextField(max_length=2000, blank=True)
    city = models.CharField(max_length=100, blank=True)
    hourly_rate = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    skills = models.ManyToManyField(Skill, related_name="profiles", blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(hourly_rate__isnull=True) | models.Q(hourly_rate__gte=0),
                name="profile_hourly_rate_non_negative",
            ),
        ]

    def __str__(self):
        return f"Profile of {self.user_id}"


class EmailOTPQuerySet(models.QuerySet):
    def latest_for(self, user):
        """``user``'s codes, newest first: the first one is the only one that can verify."""
        return self.filter(user=user).order_by("-created_at", "-id")

    def unused_for(self, user):
        """``user``'s codes not used yet (expired or not)."""
        return self.filter(user=user, used_at__isnull=True)

    def wrong_tries_since(self, user, since) -> int:
        """Wrong tries on ``user``'s codes made after ``since`` (1 query, on the
        (user, -created_at) index)."""
        total = self.filter(user=user, created_at__gt=since).aggregate(total=models.Sum("attempts"))["total"]
        return total or 0


class EmailOTP(models.Model):
    """A 6-digit code sent by e-mail; only its hash is stored. Wrong tries are
    counted here, in the database, so every process sees the same count."""

    MAX_ATTEMPTS = 5
    LIFETIME_SECONDS = 600

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="otps")
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager.from_queryset(EmailOTPQuerySet)()

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="otp_user_recent")]
        constraints = [
            models.CheckConstraint(condition=models.Q(attempts__lte=5), name="otp_attempts_max"),
        ]

    def __str__(self):
        return f"OTP for {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"


class ApiToken(TokenProxy):
    """An API token as the admin shows it: never the whole key (a key is a
    password). The admin's lists, messages, delete pages and log name a token by
    the first characters of its key and its user."""

    class Meta:
        proxy = True
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    @property
    def key_hint(self) -> str:
        return f"{self.key[:4]}…" if self.key else "-"

    def __str__(self):
        return f"{self.key_hint} ({self.user_id and self.user.email})"
