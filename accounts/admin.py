"""Admin for users (e-mail login, with their profile inline), skills and e-mail
codes. Foreign keys use autocomplete (no dropdown of every user); every list
names its related rows in ``list_select_related``, so no page queries per row.
The reputation counters are kept by the services: read-only here, and a user
whose applications or reviews are counted somewhere is deactivated, not deleted."""
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from rest_framework.authtoken.admin import TokenAdmin as DRFTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from core.admin_services import KeepCountedRowsMixin

from .models import ApiToken, EmailOTP, Profile, Skill, User


class EmailLowercaseMixin:
    """E-mails are stored lower-cased (the unique index is the case-insensitive
    one login uses), as the manager and the API serializers store them."""

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()


class ShiftboardUserCreationForm(EmailLowercaseMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "role", "first_name", "last_name")


class ShiftboardUserChangeForm(EmailLowercaseMixin, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ("bio", "city", "hourly_rate", "skills")
    autocomplete_fields = ("skills",)


@admin.register(User)
class UserAdmin(KeepCountedRowsMixin, DjangoUserAdmin):
    form = ShiftboardUserChangeForm
    add_form = ShiftboardUserCreationForm
    inlines = (ProfileInline,)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "phone", "role", "is_email_verified")}),
        ("Reputation", {"fields": ("rating_sum", "rating_count", "completed_jobs")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "role", "first_name", "last_name", "usable_password", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ("rating_sum", "rating_count", "completed_jobs", "last_login", "date_joined")
    list_display = (
        "email", "first_name", "last_name", "role", "rating", "completed_jobs",
        "is_email_verified", "is_staff", "is_active", "date_joined",
    )
    list_select_related = ()  # every column is on the user row
    list_filter = ("role", "is_staff", "is_superuser", "is_active", "is_email_verified")
    search_fields = ("email", "first_name", "last_name")
    ordering = ("-id",)
    date_hierarchy = "date_joined"
    show_full_result_count = False

    @admin.display(description="rating", ordering="rating_sum")
    def rating(self, user):
        # From the denormalised columns: no aggregate per row.
        avg = user.rating_avg
        return f"{avg} ({user.rating_count})" if avg is not None else "-"

    def kept_reason(self, user):
        # Deleting would cascade to rows that others' counters are made of (a job's
        # accepted and applications counts, the reviewed users' ratings); jobs and
        # payments already PROTECT their users. Reverse accessors: no import of the apps.
        if user.applications.exists() or user.reviews_given.exists() or user.reviews_received.exists():
            return "has applications or reviews that the marketplace counts: deactivate the account instead."
        return None

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Every user has a profile (the API's Me and PublicUser carry it), also
        # when the admin left the inline empty.
        Profile.objects.get_or_create(user=form.instance)


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(EmailOTP)
class EmailOTPAdmin(admin.ModelAdmin):
    """Codes are made (and e-mailed) by the OTP endpoint; only their hash is
    stored, so an admin cannot make a usable one: no add, hash read-only. An
    admin may unlock a code (reset ``attempts``) or expire it."""

    list_display = ("id", "user", "created_at", "expires_at", "attempts", "used_at")
    list_select_related = ("user",)
    list_filter = ("used_at",)
    ordering = ("-id",)  # the primary key's index; -created_at is indexed per user only
    search_fields = ("user__email",)
    autocomplete_fields = ("user",)
    readonly_fields = ("user", "code_hash", "created_at")
    fields = ("user", "code_hash", "created_at", "expires_at", "attempts", "used_at")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


# DRF's token admin picks the user from a dropdown of every user and shows every
# key in full: the admin registers ``ApiToken`` (keys shown as their first four
# characters only) with user autocomplete instead. Importing DRF's admin module
# above registered TokenProxy, whatever the order of INSTALLED_APPS.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class TokenAdmin(DRFTokenAdmin):
    list_display = ("key_hint", "user", "created")
    autocomplete_fields = ("user",)
    list_select_related = ("user",)
    show_full_result_count = False

    @admin.display(description="key")
    def key_hint(self, token):
        return token.key_hint
