"""Read-your-writes for the jobs endpoints: GET (MISS) -> GET (HIT) -> write ->
the next GET shows the write. ``transaction=True`` so that the scope bumps, which
run in ``transaction.on_commit``, really happen as in production."""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.cache import user_scope
from core.cache import get_versions
from jobs.models import JobStatus
from tests.accounts.factories import ClientUserFactory, SkillFactory, StaffUserFactory, WorkerUserFactory
from tests.cache.helpers import by_id, fresh
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def warm(caller, path):
    """GET twice: the first builds the entry (or finds the one a previous ``fresh``
    stored), the second is served from it."""
    first = caller.get(path)
    assert first.status_code == 200, first.content
    second = caller.get(path)
    assert second["X-Cache"] == "HIT"
    assert second.json()["data"] == first.json()["data"]
    return second.json()["data"]


def test_created_job_appears_in_list(anon):
    client = ClientUserFactory()
    category = CategoryFactory()
    assert warm(anon, "/api/v1/jobs/") == []
    body = {"title": "New shift", "category": category.pk, "city": "Köln", "rate": "12.00",
            "start_at": "2031-01-01T08:00:00Z", "end_at": "2031-01-01T16:00:00Z"}
    created = auth_client(client).post("/api/v1/jobs/", body, format="json")
    assert created.status_code == 201
    assert [row["title"] for row in fresh(anon, "/api/v1/jobs/")] == ["New shift"]


def test_patch_shows_in_list_detail_and_saved_jobs(anon):
    job = JobFactory(title="Before")
    worker = WorkerUserFactory()
    saver = auth_client(worker)
    assert saver.post(f"/api/v1/jobs/{job.pk}/save/").status_code == 201
    detail, listing, saved = f"/api/v1/jobs/{job.pk}/", "/api/v1/jobs/", "/api/v1/users/me/saved-jobs/"
    warm(anon, detail)
    warm(anon, listing)
    warm(saver, saved)
    SkillFactory(name="Welding")
    response = auth_client(job.client).patch(detail, {"title": "After", "skills": ["Welding"]}, format="json")
    assert response.status_code == 200
    after = fresh(anon, detail)
    assert (after["title"], after["skills"]) == ("After", ["Welding"])
    assert fresh(anon, listing)[0]["title"] == "After"
    assert fresh(saver, saved)[0]["title"] == "After"


def test_apply_updates_counts_and_application_lists(anon):
    job = JobFactory()
    worker = WorkerUserFactory()
    owner = auth_client(job.client)
    applicant = auth_client(worker)
    detail, listing = f"/api/v1/jobs/{job.pk}/", "/api/v1/jobs/"
    job_apps, my_apps = f"/api/v1/jobs/{job.pk}/applications/", "/api/v1/applications/"
    assert warm(anon, detail)["applications_count"] == 0
    warm(anon, listing)
    assert warm(owner, job_apps) == []
    assert warm(applicant, my_apps) == []
    assert warm(owner, my_apps) == []

    assert applicant.post(f"/api/v1/jobs/{job.pk}/apply/").status_code == 201

    assert fresh(anon, detail)["applications_count"] == 1
    assert fresh(anon, listing)[0]["applications_count"] == 1
    assert len(fresh(owner, job_apps)) == 1
    assert len(fresh(applicant, my_apps)) == 1
    assert len(fresh(owner, my_apps)) == 1


def test_accept_reject_withdraw_show_everywhere(anon):
    job = JobFactory(workers_needed=1)
    a1, a2, a3 = (ApplicationFactory(job=job) for _ in range(3))
    owner = auth_client(job.client)
    w1, w2, w3 = (auth_client(a.worker) for a in (a1, a2, a3))
    detail, job_apps, my_apps = f"/api/v1/jobs/{job.pk}/", f"/api/v1/jobs/{job.pk}/applications/", "/api/v1/applications/"
    warm(anon, detail)
    warm(owner, job_apps)
    warm(w1, my_apps)
    warm(w2, my_apps)
    warm(w3, my_apps)

    assert owner.post(f"/api/v1/applications/{a1.pk}/accept/").status_code == 200
    assert fresh(anon, detail)["status"] == "filled"
    assert by_id(fresh(owner, job_apps), a1.pk)["status"] == "accepted"
    assert fresh(w1, my_apps)[0]["status"] == "accepted"
    # The job's status embedded in another worker's application list moved too.
    assert fresh(w2, my_apps)[0]["job"]["status"] == "filled"

    warm(owner, job_apps)
    warm(w2, my_apps)
    assert owner.post(f"/api/v1/applications/{a2.pk}/reject/").status_code == 200
    assert by_id(fresh(owner, job_apps), a2.pk)["status"] == "rejected"
    assert fresh(w2, my_apps)[0]["status"] == "rejected"

    warm(owner, job_apps)
    warm(w3, my_apps)
    assert w3.post(f"/api/v1/applications/{a3.pk}/withdraw/").status_code == 200
    assert by_id(fresh(owner, job_apps), a3.pk)["status"] == "withdrawn"
    assert fresh(w3, my_apps)[0]["status"] == "withdrawn"


def test_lifecycle_transitions_show_in_detail_and_list(anon):
    job = JobFactory(start_at=timezone.now() - timedelta(minutes=5))  # its shift has begun: start and complete may
    app = ApplicationFactory(job=job)
    owner = auth_client(job.client)
    detail, listing = f"/api/v1/jobs/{job.pk}/", "/api/v1/jobs/"
    steps = [
        (lambda: owner.post(f"/api/v1/applications/{app.pk}/accept/"), "filled"),
        (lambda: owner.post(f"/api/v1/jobs/{job.pk}/start/"), "in_progress"),
        (lambda: owner.post(f"/api/v1/jobs/{job.pk}/complete/"), "completed"),
    ]
    for write, status in steps:
        warm(anon, detail)
        warm(anon, listing)
        assert write().status_code == 200
        assert fresh(anon, detail)["status"] == status
        assert fresh(anon, listing)[0]["status"] == status


def test_cancel_shows_in_detail_and_list(anon):
    job = JobFactory()
    warm(anon, f"/api/v1/jobs/{job.pk}/")
    warm(anon, "/api/v1/jobs/?status=open")
    assert auth_client(job.client).delete(f"/api/v1/jobs/{job.pk}/").status_code == 204
    assert fresh(anon, f"/api/v1/jobs/{job.pk}/")["status"] == JobStatus.CANCELLED
    assert fresh(anon, "/api/v1/jobs/?status=open") == []


def test_complete_retires_user_scopes():
    job = JobFactory(status=JobStatus.IN_PROGRESS, accepted_count=1, start_at=timezone.now() - timedelta(hours=1))
    app = ApplicationFactory(job=job, status="accepted")
    scopes = [user_scope(job.client_id), user_scope(app.worker_id)]
    before = get_versions(scopes)
    assert auth_client(job.client).post(f"/api/v1/jobs/{job.pk}/complete/").status_code == 200
    after = get_versions(scopes)
    # The lists showing them name user:<id> as a row scope.
    assert all(after[s] > before[s] for s in scopes)


def test_save_and_unsave_show_in_saved_jobs():
    job = JobFactory()
    saver = auth_client(WorkerUserFactory())
    path = "/api/v1/users/me/saved-jobs/"
    assert warm(saver, path) == []
    assert saver.post(f"/api/v1/jobs/{job.pk}/save/").status_code == 201
    assert [row["id"] for row in fresh(saver, path)] == [job.pk]
    warm(saver, path)
    assert saver.delete(f"/api/v1/jobs/{job.pk}/save/").status_code == 204
    assert fresh(saver, path) == []


def test_client_rename_shows_in_job_list(anon):
    job = JobFactory()
    warm(anon, "/api/v1/jobs/")
    warm(anon, f"/api/v1/jobs/{job.pk}/")
    client = job.client
    client.first_name = "Renamed"
    client.save()
    assert fresh(anon, "/api/v1/jobs/")[0]["client"]["first_name"] == "Renamed"
    assert fresh(anon, f"/api/v1/jobs/{job.pk}/")["client"]["first_name"] == "Renamed"


def test_category_and_skill_renames_show(anon):
    category = CategoryFactory(name="Old cat")
    skill = SkillFactory(name="Old skill")
    job = JobFactory(category=category, skills=[skill])
    warm(anon, "/api/v1/categories/")
    warm(anon, "/api/v1/jobs/")
    warm(anon, f"/api/v1/jobs/{job.pk}/")
    category.name = "New cat"
    category.save()
    skill.name = "New skill"
    skill.save()
    assert fresh(anon, "/api/v1/categories/")[0]["name"] == "New cat"
    row = fresh(anon, "/api/v1/jobs/")[0]
    assert (row["category"]["name"], row["skills"]) == ("New cat", ["New skill"])
    assert fresh(anon, f"/api/v1/jobs/{job.pk}/")["skills"] == ["New skill"]


def test_private_lists_are_never_served_to_another_user():
    job = JobFactory()
    ApplicationFactory(job=job)
    owner = auth_client(job.client)
    path = f"/api/v1/jobs/{job.pk}/applications/"
    warm(owner, path)
    # Another client is refused even though the owner's entry is warm.
    other = auth_client(ClientUserFactory()).get(path)
    assert other.status_code == 404
    # Staff may read it, from their own entry, not the owner's.
    staff = auth_client(StaffUserFactory()).get(path)
    assert staff.status_code == 200 and staff["X-Cache"] == "MISS"
    assert APIClient().get(path).status_code == 401

    worker = ApplicationFactory().worker
    mine = auth_client(worker)
    warm(mine, "/api/v1/applications/")
    assert auth_client(WorkerUserFactory()).get("/api/v1/applications/").json()["data"] == []


def test_filtered_application_list_validates_the_rows_it_shows():
    """A job's applications filtered by status: the rows a hit validates are the
    filtered page's (core.cache.Rows reads the handler's own queryset), so a new
    name of a worker shown there retires the entry even when the unfiltered page
    would show someone else."""
    job = JobFactory(accepted_count=1)
    shown = ApplicationFactory(job=job, status="accepted")
    ApplicationFactory(job=job, status="pending")  # newer: first on the unfiltered page
    owner = auth_client(job.client)
    path = f"/api/v1/jobs/{job.pk}/applications/?status=accepted&per_page=1"
    assert [row["id"] for row in warm(owner, path)] == [shown.pk]
    response = auth_client(shown.worker).patch("/api/v1/users/me/", {"last_name": "Renamed"}, format="json")
    assert response.status_code == 200
    assert fresh(owner, path)[0]["worker"]["last_name"] == "Renamed"


def test_cancel_shows_in_every_application_list_at_once():
    """Cancelling closes the pending applications (``cancelled``) and marks the
    accepted ones (``hire_cancelled``) with update(): the workers' lists, the
    client's list and the job's application list show it on the next read."""
    job = JobFactory(workers_needed=2)
    owner = auth_client(job.client)
    hired, waiting = ApplicationFactory(job=job), ApplicationFactory(job=job)
    assert owner.post(f"/api/v1/applications/{hired.pk}/accept/").status_code == 200
    hired_worker, waiting_worker = auth_client(hired.worker), auth_client(waiting.worker)
    job_apps, my_apps = f"/api/v1/jobs/{job.pk}/applications/", "/api/v1/applications/"
    warm(owner, job_apps)
    warm(owner, my_apps)
    warm(hired_worker, my_apps)
    warm(waiting_worker, my_apps)
    # A filtered list that does not show the row yet (no row scope of the job):
    # only the explicit bump of the applications scopes can retire it.
    closed = f"{my_apps}?status=cancelled"
    assert warm(waiting_worker, closed) == []
    assert owner.delete(f"/api/v1/jobs/{job.pk}/").status_code == 204
    expected = {hired.pk: "hire_cancelled", waiting.pk: "cancelled"}
    assert {row["id"]: row["status"] for row in fresh(owner, job_apps)} == expected
    assert {row["id"]: row["status"] for row in fresh(owner, my_apps)} == expected
    assert [row["status"] for row in fresh(hired_worker, my_apps)] == ["hire_cancelled"]
    assert [row["status"] for row in fresh(waiting_worker, my_apps)] == ["cancelled"]
    assert [row["id"] for row in fresh(waiting_worker, closed)] == [waiting.pk]
