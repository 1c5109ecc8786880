"""``manage.py seed``: every status present, counters consistent with the rows,
demo logins that work, the same rows for the same arguments, --if-empty, --flush,
and the cache handled although bulk writes send no signals."""
import hashlib
from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db.models import Min
from rest_framework.authtoken.models import Token

from accounts import cache as accounts_cache
from accounts.models import Profile, Skill, User
from core import cache as core_cache
from jobs import cache as jobs_cache
from jobs.models import Application, Category, Job, SavedJob
from payments import cache as payments_cache
from payments.models import Payment
from ratings import cache as ratings_cache
from ratings.models import Review
from tests.accounts.factories import ClientUserFactory, StaffUserFactory
from tests.conftest import auth_client
from tools.management.commands import seed as seed_module

BASE_TIME = "2026-11-23T12:00:00Z"
N_JOBS = 40
CHECKSUM_MODELS = [
    Skill, Category, User, Profile, Profile.skills.through, Job, Job.skills.through,
    Application, SavedJob, Payment, Review,
]


def run_seed(*args) -> str:
    out = StringIO()
    call_command("seed", *args, "--base-time", BASE_TIME, stdout=out)
    return out.getvalue()


def data_checksum() -> str:
    """A digest of every seeded row. Ids are taken relative to their table's
    smallest id, so a reseed after --flush (sequences keep counting) compares equal."""
    lowest = {m: m.objects.aggregate(low=Min("pk"))["low"] or 0 for m in CHECKSUM_MODELS}
    digest = hashlib.sha256()
    for model in CHECKSUM_MODELS:
        fields = model._meta.concrete_fields
        for row in model.objects.order_by("pk").values_list(*[f.attname for f in fields]):
            normalised = []
            for f, value in zip(fields, row):
                if f.primary_key:
                    value -= lowest[model]
                elif f.is_relation and value is not None:
                    value -= lowest[f.related_model]
                normalised.append(value)
            digest.update(repr((model._meta.label, normalised)).encode())
    return digest.hexdigest()


@pytest.fixture
def seeded(db):
    return run_seed("--jobs", str(N_JOBS))


def test_every_status_is_present(seeded):
    assert set(Job.objects.values_list("status", flat=True)) == {
        "open", "filled", "in_progress", "completed", "cancelled"
    }
    assert set(Application.objects.values_list("status", flat=True)) == {
        "pending", "accepted", "rejected", "withdrawn", "cancelled", "hire_cancelled"
    }
    assert set(Payment.objects.values_list("status", flat=True)) == {"pending", "succeeded"}
    assert Category.objects.count() == len(seed_module.CATEGORIES)
    assert Skill.objects.count() == len(seed_module.SKILLS)
    assert set(User.objects.values_list("role", flat=True)) == {"client", "worker"}
    # Every user has a profile; workers have skills; every job has skills.
    assert Profile.objects.count() == User.objects.count()
    assert not Job.objects.filter(skills__isnull=True).exists()
    assert not Profile.objects.filter(user__role="worker", skills__isnull=True).exists()


def test_sizes_scale_with_jobs(seeded):
    assert Job.objects.count() == N_JOBS
    assert User.objects.count() >= 12
    assert 2 * N_JOBS <= Application.objects.count() <= 4 * N_JOBS
    assert Payment.objects.count() == N_JOBS // 5
    assert Review.objects.count() == N_JOBS // 5
    assert SavedJob.objects.count() == N_JOBS // 2


def test_job_counters_match_application_rows(seeded):
    for job in Job.objects.prefetch_related("applications"):
        statuses = Counter(a.status for a in job.applications.all())
        assert job.applications_count == sum(statuses.values()), job.pk
        assert job.accepted_count == statuses["accepted"] + statuses["hire_cancelled"], job.pk
        assert job.accepted_count <= job.workers_needed
        assert job.end_at > job.start_at
        if job.status in ("filled", "in_progress", "completed"):
            assert job.accepted_count == job.workers_needed
            assert statuses["pending"] == 0
        if job.status == "open":
            assert job.accepted_count < job.workers_needed
        for application in job.applications.all():
            assert application.worker.role == "worker"
            assert application.worker_id != job.client_id


def test_payments_and_reviews_follow_the_rules(seeded):
    accepted = set(Application.objects.filter(status="accepted").values_list("job_id", "worker_id"))
    for payment in Payment.objects.select_related("job"):
        assert payment.job.status == "completed"
        assert payment.payer_id == payment.job.client_id
        assert (payment.job_id, payment.recipient_id) in accepted
        assert payment.currency == payment.job.currency
        assert payment.amount > 0
    for review in Review.objects.select_related("job"):
        assert review.job.status == "completed"
        client = review.job.client_id
        worker = review.reviewed_id if review.reviewer_id == client else review.reviewer_id
        assert client in (review.reviewer_id, review.reviewed_id)
        assert (review.job_id, worker) in accepted
        assert 1 <= review.rating <= 5


def test_user_counters_match_rows(seeded):
    for user in User.objects.all():
        received = list(Review.objects.filter(reviewed=user).values_list("rating", flat=True))
        assert user.rating_count == len(received), user.email
        assert user.rating_sum == sum(received), user.email
        completed = Job.objects.filter(status="completed")
        expected = (
            completed.filter(client=user).count()
            + completed.filter(applications__worker=user, applications__status="accepted").count()
        )
        assert user.completed_jobs == expected, user.email


def test_demo_logins_and_walkthrough(seeded):
    admin = authenticate(email="admin@shiftboard.local", password="demo-pass-123")
    client = authenticate(email="client@shiftboard.local", password="demo-pass-123")
    worker = authenticate(email="worker@shiftboard.local", password="demo-pass-123")
    assert admin and admin.is_staff and admin.is_superuser
    assert client and client.role == "client" and not client.is_staff
    assert worker and worker.role == "worker"
    for user in (admin, client, worker):
        key = Token.objects.get(user=user).key
        assert key in seeded  # printed with the login
        assert user.email in seeded
    mine = Application.objects.filter(worker=worker, status="accepted", job__client=client)
    completed = mine.get(job__status="completed").job
    assert mine.filter(job__status="in_progress").exists()
    # The walkthrough pays and reviews the completed job itself: nothing there yet.
    assert not Payment.objects.filter(job=completed).exists()
    assert not Review.objects.filter(job=completed).exists()


def test_same_arguments_give_the_same_rows(seeded):
    first = data_checksum()
    run_seed("--jobs", str(N_JOBS), "--flush")
    assert data_checksum() == first
    run_seed("--jobs", str(N_JOBS), "--flush", "--random-seed", "7")
    assert data_checksum() != first


def test_if_empty_is_a_no_op_the_second_time(seeded):
    before = data_checksum()
    out = run_seed("--jobs", "60", "--if-empty")
    assert "nothing seeded" in out
    assert Job.objects.count() == N_JOBS
    assert data_checksum() == before
    # make run shows the demo logins and their working tokens on every start.
    from rest_framework.authtoken.models import Token

    client_token = Token.objects.get(user__email="client@shiftboard.local").key
    assert f"client@shiftboard.local    token {client_token}" in out
    assert "worker@shiftboard.local" in out and "admin@shiftboard.local" in out


def test_a_second_seed_without_flush_refuses(seeded):
    with pytest.raises(CommandError, match="already has jobs"):
        run_seed("--jobs", str(N_JOBS))
    assert Job.objects.count() == N_JOBS


def test_too_few_jobs_refused(db):
    with pytest.raises(CommandError):
        run_seed("--jobs", "3")


def test_global_scopes_are_the_apps_list_scopes():
    assert set(seed_module.GLOBAL_SCOPES) == {
        jobs_cache.JOBS, jobs_cache.JOB_SET, jobs_cache.CATEGORIES, accounts_cache.SKILLS, ratings_cache.REVIEWS
    }


def test_seed_bumps_the_global_scopes(db):
    before = core_cache.get_versions(seed_module.GLOBAL_SCOPES)
    run_seed("--jobs", str(N_JOBS))
    after = core_cache.get_versions(seed_module.GLOBAL_SCOPES)
    assert all(after[s] > before[s] for s in seed_module.GLOBAL_SCOPES)


def test_seed_bumps_the_per_user_lists_of_every_new_user(db):
    run_seed("--jobs", str(N_JOBS))
    new_users = list(User.objects.values_list("pk", flat=True))
    scopes = seed_module.seeded_scopes(new_users)
    for pk in new_users:
        assert {ratings_cache.received_scope(pk), ratings_cache.given_scope(pk), payments_cache.payments_scope(pk)} <= set(scopes)


def test_no_stale_read_after_a_seed(db, anon):
    """Lists cached before the seed (empty: the plain job list, and a staff
    member's payments list of ids that have no user yet) show the seeded rows
    right after it; a review list of an id without a user is a 404 before (nothing
    cached) and the seeded reviews after."""
    staff = auth_client(StaffUserFactory())
    # The next ids the seed's users will take (ids are never reused).
    probe = ClientUserFactory()
    first_new = probe.pk + 1
    probe.delete()
    candidates = range(first_new, first_new + 12)  # 40 jobs -> 12 users
    lists = [
        *((anon, f"/api/v1/users/{pk}/reviews/") for pk in candidates),
        *((anon, f"/api/v1/users/{pk}/reviews-given/") for pk in candidates),
        *((staff, f"/api/v1/users/{pk}/payments/") for pk in candidates),
        (anon, "/api/v1/jobs/"),
    ]
    for caller, url in lists:
        if "/reviews" in url:
            assert caller.get(url).status_code == 404, url  # no user yet: nothing to cache
            continue
        assert caller.get(url).status_code == 200
        assert caller.get(url)["X-Cache"] == "HIT"
    run_seed("--jobs", str(N_JOBS))
    assert set(candidates) <= set(User.objects.values_list("pk", flat=True))
    shown = 0
    for caller, url in lists:
        response = caller.get(url)
        assert response["X-Cache"] == "MISS", url
        total = response.json()["pagination"]["total_items"]
        shown += total
    assert shown > Job.objects.count()  # the job list and some reviews and payments


def test_flush_clears_the_response_cache(seeded):
    cache.set("some-cached-response", "stale", timeout=60)
    run_seed("--jobs", str(N_JOBS), "--flush")
    assert cache.get("some-cached-response") is None
    assert Job.objects.count() == N_JOBS
    assert User.objects.filter(email="admin@shiftboard.local").count() == 1


@pytest.mark.postgres
def test_copy_writer_and_bulk_create_writer_write_the_same_rows(db, monkeypatch):
    """On PostgreSQL the seed writes with COPY; the portable bulk_create writer
    must produce identical rows."""
    run_seed("--jobs", str(N_JOBS))
    with_copy = data_checksum()
    monkeypatch.setattr(seed_module, "_writer", seed_module.BulkCreateWriter)
    run_seed("--jobs", str(N_JOBS), "--flush")
    assert data_checksum() == with_copy


def test_existing_skills_and_categories_are_reused(db):
    barista = Skill.objects.create(name="Barista", slug="barista")
    hospitality = Category.objects.create(name="Hospitality", slug="hospitality")
    run_seed("--jobs", str(N_JOBS))
    assert Skill.objects.filter(name="Barista").get() == barista
    assert Category.objects.filter(name="Hospitality").get() == hospitality
    assert Skill.objects.count() == len(seed_module.SKILLS)
    assert Job.objects.filter(category=hospitality).exists()
    assert User.objects.get(email="worker@shiftboard.local").profile.skills.filter(pk=barista.pk).exists()


@pytest.mark.django_db
def test_seed_refuses_the_published_password_in_production(settings):
    """Issue 10: every seeded user gets DEMO_PASSWORD, which the README prints."""
    settings.DEBUG = False
    settings.ALLOW_DEMO_PASSWORD = False
    with pytest.raises(CommandError, match="published"):
        run_seed("--jobs", str(N_JOBS))
    assert not User.objects.exists()


def test_check_deploy_flags_allow_demo_password():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", SECRET_KEY="s" * 60, ALLOWED_HOSTS="api.example.com",
               REDIS_URL="redis://redis.example.com:6379/0", ALLOW_DEMO_PASSWORD="1")
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "shiftboard.W002" in done.stderr
