"""Serializers of the jobs app. ``JobRefSerializer`` is the (id, title, status)
shape that applications, payments and reviews embed.

Read serializers only touch what the named querysets already loaded
(``select_related`` / ``prefetch_related``): they never query. The write
serializers validate the body; the services in ``jobs.services`` make the writes.
"""
import re

from django.conf import settings
from django.db.models import OuterRef
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Skill
from accounts.serializers import (
    USER_LITE_COLUMNS,
    UserLiteSerializer,
    user_lite_columns,
    user_lite_repr,
    user_lite_value,
)
from core.converters import MAX_ID
from core.envelope import values_page
from core.representation import NameList, Row, Rows, datetime_formatter, decimal_repr, prefetched

from .models import Application, Category, Job
from .services import MAX_WORKERS_NEEDED

MAX_SKILLS_PER_JOB = 20
# What a slug can be; anything else (a NUL byte included, which PostgreSQL refuses
# in a query) names no category.
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")


class JobRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "title", "status"]
        read_only_fields = fields


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name", "slug"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    """A job (shift) as everyone sees it."""

    category = CategorySerializer(read_only=True)
    # Names from the prefetched skills (``JobQuerySet.for_list``): no query per row.
    skills = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    client = UserLiteSerializer(read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "title",
            "description",
            "category",
            "skills",
            "client",
            "city",
            "rate",
            "currency",
            "workers_needed",
            "accepted_count",
            "start_at",
            "end_at",
            "status",
            "applications_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SavedJobSerializer(JobSerializer):
    """A saved job: the Job representation plus when the caller saved it."""

    saved_at = serializers.DateTimeField(read_only=True)

    class Meta(JobSerializer.Meta):
        fields = JobSerializer.Meta.fields + ["saved_at"]
        read_only_fields = fields


# --- fast representations (core/representation.py): the same bytes as the
# serializers above, without their per-field machinery ---------------------------


def job_ref_repr(job) -> dict:
    """``JobRefSerializer(job).data``."""
    return job_ref_value(job.id, job.title, job.status)


def job_ref_value(job_id, title, status) -> dict:
    """``job_ref_repr`` from the ``job_ref_columns`` values."""
    return {"id": job_id, "title": title, "status": status}


JOB_REF_FIELDS = ("id", "title", "status")  # JobRefSerializer's, in its order


def job_ref_columns(prefix: str) -> tuple[str, ...]:
    """The ``values_list`` columns of the job ref at ``prefix`` (e.g. ``job``),
    read back by ``job_ref_value``."""
    return tuple(f"{prefix}__{column}" for column in JOB_REF_FIELDS)


def job_and_users_columns(first: str, second: str) -> tuple[str, ...]:
    """The ``values_list`` columns that open a payment's or a review's plain values:
    its id, its job ref and two user-lites (payer and recipient, reviewer and
    reviewed); read back by ``job_and_users_row``."""
    return ("id", *job_ref_columns("job"), *user_lite_columns(first), *user_lite_columns(second))


# How many of a payment's or review's values job_and_users_row reads: the rest are its own.
JOB_AND_USERS_WIDTH = len(job_and_users_columns("first", "second"))


def job_and_users_row(values, first: str, second: str) -> Row:
    """The representation's first fields (id, job, ``first``, ``second``, in the
    serializers' order) from the ``job_and_users_columns`` values at the start of
    ``values``; the caller adds the rest."""
    users = 1 + len(JOB_REF_FIELDS)  # where the first user-lite starts
    width = len(USER_LITE_COLUMNS)
    return Row(id=values[0], job=job_ref_value(*values[1:users]), **{
        first: user_lite_value(*values[users : users + width]),
        second: user_lite_value(*values[users + width : users + 2 * width]),
    })


def job_repr(job, datetime_repr=None) -> Row:
    """``JobSerializer(job).data`` for a job of ``JobQuerySet.for_list`` (its
    category, client and prefetched skills)."""
    datetime_repr = datetime_repr or datetime_formatter()
    category = job.category
    return Row(
        id=job.id,
        title=job.title,
        description=job.description,
        category={"id": category.id, "name": category.name, "slug": category.slug},
        skills=[skill.name for skill in prefetched(job, "skills")],
        client=user_lite_repr(job.client),
        city=job.city,
        rate=decimal_repr(job.rate, 2, 10),
        currency=job.currency,
        workers_needed=job.workers_needed,
        accepted_count=job.accepted_count,
        start_at=datetime_repr(job.start_at),
        end_at=datetime_repr(job.end_at),
        status=job.status,
        applications_count=job.applications_count,
        created_at=datetime_repr(job.created_at),
        updated_at=datetime_repr(job.updated_at),
    )


def job_rows(jobs) -> Rows:
    """``JobSerializer(jobs, many=True).data``."""
    datetime_repr = datetime_formatter()
    return Rows(job_repr(job, datetime_repr) for job in jobs)


# The columns ``job_value_rows`` reads: a job row, its category's and its client's,
# as one tuple per job (``values_list``: no model instances).
JOB_COLUMNS = (
    "id", "title", "description", "category_id", "category__name", "category__slug", "client_id",
    "client__first_name", "client__last_name", "client__rating_sum", "client__rating_count", "city", "rate",
    "currency", "workers_needed", "accepted_count", "start_at", "end_at", "status", "applications_count",
    "created_at", "updated_at",
)


# A list page's columns: JOB_COLUMNS and the job's skill names, by name as
# ``Skill`` orders them, in one column (core.representation.NameList): a page of
# jobs and their skills in one query.
JOB_SKILL_NAMES = NameList(Job.skills.through.objects.filter(job_id=OuterRef("pk")), "skill__name")
JOB_LIST_COLUMNS = (*JOB_COLUMNS, JOB_SKILL_NAMES)


def job_values(queryset):
    """``queryset`` (jobs, filtered and ordered) as ``JOB_LIST_COLUMNS`` tuples, for
    ``job_value_rows``: the same rows, in the same order, one query for a page
    with their skills (a paginated total is counted on ``queryset``:
    core.envelope.values_page)."""
    return values_page(queryset, *JOB_LIST_COLUMNS)


# A job detail in one query: JOB_COLUMNS and one skill name per row (one row
# without skills), by name as ``Skill`` orders them (job_detail_values).
JOB_DETAIL_COLUMNS = (*JOB_COLUMNS, "skills__name")
JOB_DETAIL_ORDER = ("skills__name",)


def job_detail_values(found) -> list:
    """Rows of ``JOB_DETAIL_COLUMNS`` for one job -> its ``JOB_LIST_COLUMNS`` values
    (the skill names gathered from its rows) as a one-row page for
    ``job_value_rows``; [] when there is no such job."""
    if not found:
        return []
    return [(*found[0][:-1], [row[-1] for row in found if row[-1] is not None])]


def job_value_rows(values) -> Rows:
    """``JobSerializer(jobs, many=True).data`` from ``job_values`` tuples (a page
    of them, or ``job_detail_values``'s one): what ``job_rows`` gives for the same
    jobs loaded by ``JobQuerySet.for_list``, without building a Job, a Category and
    a User per row (on a job-list miss that cost about as much as the queries
    themselves). No query of its own: the skills came with the rows."""
    datetime_repr = datetime_formatter()
    rows = Rows()
    for (
        job_id, title, description, category_id, category_name, category_slug, client_id, first_name, last_name,
        rating_sum, rating_count, city, rate, currency, workers_needed, accepted_count, start_at, end_at, status,
        applications_count, created_at, updated_at, skills,
    ) in values:
        rows.append(Row(
            id=job_id,
            title=title,
            description=description,
            category={"id": category_id, "name": category_name, "slug": category_slug},
            skills=skills,
            client=user_lite_value(client_id, first_name, last_name, rating_sum, rating_count),
            city=city,
            rate=decimal_repr(rate, 2, 10),
            currency=currency,
            workers_needed=workers_needed,
            accepted_count=accepted_count,
            start_at=datetime_repr(start_at),
            end_at=datetime_repr(end_at),
            status=status,
            applications_count=applications_count,
            created_at=datetime_repr(created_at),
            updated_at=datetime_repr(updated_at),
        ))
    return rows


def saved_job_rows(jobs) -> Rows:
    """``SavedJobSerializer(jobs, many=True).data`` (jobs of ``JobQuerySet.saved_by``)."""
    datetime_repr = datetime_formatter()
    rows = Rows()
    for job in jobs:
        row = job_repr(job, datetime_repr)
        row["saved_at"] = datetime_repr(job.saved_at)
        rows.append(row)
    return rows


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "Category id or slug."})
class CategoryRefField(serializers.Field):
    """A category given by id (number or digit string) or by slug."""

    default_error_messages = {
        "invalid": "Give a category id or slug.",
        "does_not_exist": "No category with id or slug {value!r}.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("invalid")
        lookup = {}
        if isinstance(data, int) or (isinstance(data, str) and data.isascii() and data.isdigit()):
            value = int(data)
            if not 1 <= value <= MAX_ID:
                self.fail("does_not_exist", value=data)
            lookup = {"pk": value}
        elif SLUG_RE.match(data):
            lookup = {"slug": data}
        else:
            self.fail("invalid")
        category = Category.objects.filter(**lookup).first()
        if category is None:
            self.fail("does_not_exist", value=data)
        return category

    def to_representation(self, value):
        return value.pk


@extend_schema_field(
    {
        "type": "array",
        "items": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "description": "Skill ids or names.",
    }
)
class SkillsRefField(serializers.Field):
    """A list of skills, each given by id (a JSON number) or by name (or slug)."""

    default_error_messages = {
        "not_a_list": "Give a list of skill names or ids.",
        "invalid_item": "Each skill is a skill name (text) or id (number).",
        "too_many": f"At most {MAX_SKILLS_PER_JOB} skills.",
        "unknown": "Unknown skills: {values}.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list")
        if len(data) > MAX_SKILLS_PER_JOB:
            self.fail("too_many")
        ids, names = set(), set()
        for item in data:
            if isinstance(item, bool):
                self.fail("invalid_item")
            if isinstance(item, int):
                if not 1 <= item <= MAX_ID:
                    self.fail("unknown", values=item)
                ids.add(item)
            elif isinstance(item, str) and item.strip() and len(item) <= 64 and "\x00" not in item:
                names.add(item.strip())
            else:
                self.fail("invalid_item")
        found = list(Skill.objects.filter(pk__in=ids)) if ids else []
        if names:
            found += list(Skill.objects.filter(name__in=names)) + list(Skill.objects.filter(slug__in=names))
        found_ids = {s.pk for s in found}
        found_names = {s.name for s in found} | {s.slug for s in found}
        unknown = sorted(str(i) for i in ids - found_ids) + sorted(names - found_names)
        if unknown:
            self.fail("unknown", values=", ".join(unknown))
        return list({s.pk: s for s in found}.values())

    def to_representation(self, value):
        # A job's ``skills`` manager when the browsable API fills its edit form.
        skills = value.all() if hasattr(value, "all") else value
        return [s.name for s in skills]


class JobWriteSerializer(serializers.ModelSerializer):
    """Body of POST /jobs/ and PATCH /jobs/{id}/. ``client``, ``status`` and the
    counters are not fields here, so a body that sends them changes nothing."""

    category = CategoryRefField()
    skills = SkillsRefField(required=False)
    rate = serializers.DecimalField(max_digits=10, decimal_places=2)
    workers_needed = serializers.IntegerField(min_value=1, max_value=MAX_WORKERS_NEEDED, required=False)
    currency = serializers.CharField(max_length=3, required=False)

    class Meta:
        model = Job
        fields = [
            "title",
            "description",
            "category",
            "skills",
            "city",
            "rate",
            "currency",
            "workers_needed",
            "start_at",
            "end_at",
        ]

    def validate_title(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value.strip()

    def validate_rate(self, value):
        if value <= 0:
            raise serializers.ValidationError("Must be greater than 0.")
        return value

    def validate_currency(self, value):
        value = value.upper()
        if value not in settings.CURRENCIES:
            raise serializers.ValidationError(f"Must be one of {', '.join(settings.CURRENCIES)}.")
        return value

    # The rules of time and terms (start in the future, end after start, frozen
    # terms) are the services' (jobs.services), for the API and the admin alike.


class ApplicationSerializer(serializers.ModelSerializer):
    """An application of a worker to a job."""

    job = JobRefSerializer(read_only=True)
    worker = UserLiteSerializer(read_only=True)

    class Meta:
        model = Application
        fields = ["id", "job", "worker", "status", "cover_note", "created_at", "updated_at"]
        read_only_fields = fields


class ApplyInputSerializer(serializers.Serializer):
    """Body of POST /jobs/{id}/apply/ (may be empty)."""

    cover_note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class SaveResultSerializer(serializers.Serializer):
    """Answer of POST /jobs/{id}/save/."""

    job = JobRefSerializer(read_only=True)
    saved_at = serializers.DateTimeField(read_only=True)
