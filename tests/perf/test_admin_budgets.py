"""Admin query budgets: every registered model's changelist and change page run
the same number of queries with 3 rows as with 30 (no query per row, per inline
row or per selected related object), under a small ceiling; every add page opens.

The change page of each model shows a "subject" row that gains related rows as
the data grows: the job gets more applications (inline) and skills, the worker
more profile skills and groups, the group more permissions.
"""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from zeal import zeal_ignore

from accounts.models import ApiToken, EmailOTP, Profile, Skill, User
from jobs.models import Application, Category, Job, SavedJob
from payments.models import Payment
from ratings.models import Review
from tests.accounts.factories import ClientUserFactory, SkillFactory, StaffUserFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory, SavedJobFactory

SMALL, LARGE = 3, 30
# Session, user, the page's own queries, filters, date hierarchy, count: fixed.
CHANGELIST_CEILING = 12
CHANGE_PAGE_CEILING = 14

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)
# Codes are made by the OTP endpoint only (the admin cannot make a usable one);
# payments by the API only, under the payment rules.
NO_ADD_PAGE = {EmailOTP, Payment}


class AdminData:
    """Rows of every registered model; ``grow(k)`` adds k of each, and k related
    rows to each subject."""

    def __init__(self):
        self.client = ClientUserFactory(email="subject-client@example.com")
        self.worker = WorkerUserFactory(email="subject-worker@example.com")
        self.job = JobFactory(client=self.client, workers_needed=100)
        self.group = Group.objects.create(name="subject group")
        self.token = Token.objects.create(user=self.client)
        self.subjects = {
            User: self.worker,
            Group: self.group,
            ApiToken: self.token,
            Job: self.job,
        }
        self.permissions = list(Permission.objects.order_by("pk"))
        self.rows = 0

    def grow(self, k: int) -> None:
        now = timezone.now()
        for _ in range(k):
            n = self.rows = self.rows + 1
            skill = SkillFactory()
            CategoryFactory()
            self.worker.profile.skills.add(skill)
            self.job.skills.add(skill)
            client, worker = ClientUserFactory(), WorkerUserFactory()
            group = Group.objects.create(name=f"group {n}")
            self.worker.groups.add(group)
            self.group.permissions.add(self.permissions[n])
            Token.objects.create(user=client)
            JobFactory(client=client, skills=[skill])
            ApplicationFactory(job=self.job, worker=worker, status="accepted" if n % 2 else "pending")
            SavedJobFactory(job=self.job, user=worker)
            Payment.objects.create(
                payer=self.client, recipient=worker, job=self.job, amount=Decimal("40.00"), currency="EUR",
                reference=f"PAY-ADMIN-{n}", idempotency_key=f"admin-{n}", request_fingerprint="0" * 64,
            )
            Review.objects.create(job=self.job, reviewer=worker, reviewed=self.client, rating=1 + n % 5)
            EmailOTP.objects.create(user=self.worker, code_hash="x" * 64, expires_at=now + timedelta(minutes=10))

    def subject(self, model):
        if model in self.subjects:
            return self.subjects[model]
        first = model._default_manager.order_by("pk").first()
        assert first is not None, f"{model._meta.label} is registered in the admin: add it to AdminData.grow()"
        return first


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _change_url(model, obj):
    # DRF's token admin addresses a token by its user's id.
    return _url(model, "change", obj.user_id if model is ApiToken else obj.pk)


def _count(client, url) -> int:
    client.get(url)  # warm up: per-process caches (content types) fill on the first request
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


# The test-wide N+1 guard (django-zeal) keys a query to its nearest project frame.
# On a user's (or token's) change page, the session middleware's User.get() and
# the admin's get_object() User.get() are both library code, so both key to the
# same middleware line and look like one .get() in a loop. They are two fixed
# queries: the two-size comparison below is what proves the count constant.
SAME_LINE_GETS = [{"model": "accounts.User", "field": "get()"}]


@pytest.fixture
def admin_client(client, db):
    client.force_login(StaffUserFactory())
    return client


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_changelist_and_change_page_do_not_grow_with_rows(admin_client, model):
    data = AdminData()
    data.grow(SMALL)
    subject = data.subject(model)
    with zeal_ignore(SAME_LINE_GETS if model in (User, ApiToken) else []):
        small = (_count(admin_client, _url(model, "changelist")), _count(admin_client, _change_url(model, subject)))
        data.grow(LARGE - SMALL)
        large = (_count(admin_client, _url(model, "changelist")), _count(admin_client, _change_url(model, subject)))
    assert large == small, f"{model._meta.label}: (changelist, change page) queries {small} -> {large}"
    assert large[0] <= CHANGELIST_CEILING
    assert large[1] <= CHANGE_PAGE_CEILING


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_changelist_search_and_add_page_open(admin_client, model):
    AdminData().grow(2)
    # search_fields name real lookups (a wrong one would be a 500 here).
    assert admin_client.get(_url(model, "changelist"), {"q": "a"}).status_code == 200
    response = admin_client.get(_url(model, "add"))
    assert response.status_code == (403 if model in NO_ADD_PAGE else 200)


def test_every_app_model_is_registered():
    for model in (User, Skill, EmailOTP, Category, Job, Application, SavedJob, Payment, Review):
        assert admin.site.is_registered(model), model
    # Profile is edited inline on its user.
    assert not admin.site.is_registered(Profile)
