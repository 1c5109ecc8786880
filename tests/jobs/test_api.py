"""The jobs, categories, applications and saved-jobs endpoints over HTTP (docs/API.md)."""
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from jobs.models import Application, ApplicationStatus, Job, JobStatus, SavedJob
from tests.accounts.factories import ClientUserFactory, SkillFactory, StaffUserFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory, SavedJobFactory

pytestmark = pytest.mark.django_db

JOB_FIELDS = {
    "id", "title", "description", "category", "skills", "client", "city", "rate", "currency",
    "workers_needed", "start_at", "end_at", "status", "applications_count", "created_at", "updated_at",
}
APPLICATION_FIELDS = {"id", "job", "worker", "status", "cover_note", "created_at"}


def ok(response, status=200):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is True
    return body["data"]


def err(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"] == code
    assert body["correlation_id"] == response["X-Request-ID"]
    return body


def ids(data):
    return [row["id"] for row in data]


def job_body(category_obj, **overrides):
    start = timezone.now() + timedelta(days=5)
    body = {
        "title": "Warehouse picker",
        "description": "Pick and pack",
        "category": category_obj.pk,
        "skills": [],
        "city": "Hamburg",
        "rate": "18.50",
        "currency": "EUR",
        "workers_needed": 2,
        "start_at": start.isoformat(),
        "end_at": (start + timedelta(hours=8)).isoformat(),
    }
    body.update(overrides)
    return body


# --- categories ------------------------------------------------------------------

def test_categories_list_is_public(anon):
    CategoryFactory(name="Retail", slug="retail")
    CategoryFactory(name="Events", slug="events")
    data = ok(anon.get("/api/v1/categories/"))
    assert [c["slug"] for c in data] == ["events", "retail"]
    assert set(data[0]) == {"id", "name", "slug"}


# --- job list --------------------------------------------------------------------

def test_job_list_newest_first_with_full_representation(anon):
    skill = SkillFactory(name="Forklift")
    older = JobFactory(skills=[skill])
    newer = JobFactory()
    response = anon.get("/api/v1/jobs/")
    data = ok(response)
    assert ids(data) == [newer.pk, older.pk]
    row = data[1]
    assert JOB_FIELDS <= set(row)
    assert row["skills"] == ["Forklift"]
    assert row["rate"] == "20.00"
    assert set(row["category"]) == {"id", "name", "slug"}
    assert set(row["client"]) == {"id", "first_name", "last_name", "rating_avg"}
    assert "email" not in row["client"]
    pagination = response.json()["pagination"]
    assert pagination["total_items"] == 2 and pagination["page"] == 1


def test_job_list_filters(anon):
    cat_a, cat_b = CategoryFactory(slug="cat-a"), CategoryFactory(slug="cat-b")
    cooking = SkillFactory(name="Cooking", slug="cooking")
    client = ClientUserFactory()
    j1 = JobFactory(category=cat_a, city="Berlin", rate="10.00", title="Dish washer", skills=[cooking])
    j2 = JobFactory(category=cat_b, city="Munich", rate="30.00", description="Night COOK needed", client=client)
    j3 = JobFactory(category=cat_a, city="berlin", rate="50.00", status=JobStatus.FILLED)

    def listed(query):
        return ids(ok(anon.get(f"/api/v1/jobs/?{query}")))

    assert listed("status=open") == [j2.pk, j1.pk]
    assert listed("status=filled") == [j3.pk]
    assert listed(f"category={cat_a.pk}") == [j3.pk, j1.pk]
    assert listed("category=cat-b") == [j2.pk]
    assert listed("category=no-such-slug") == []
    assert listed("skill=cooking") == [j1.pk]
    assert listed("city=BERLIN") == [j3.pk, j1.pk]
    assert listed("min_rate=30") == [j3.pk, j2.pk]
    assert listed("max_rate=30") == [j2.pk, j1.pk]
    assert listed("min_rate=15&max_rate=40") == [j2.pk]
    assert listed("search=cook") == [j2.pk]
    assert listed("search=dish") == [j1.pk]
    assert listed(f"client={client.pk}") == [j2.pk]
    assert listed("client=999999") == []


def test_job_list_ordering(anon):
    now = timezone.now()
    a = JobFactory(rate="30.00", start_at=now + timedelta(days=3), end_at=now + timedelta(days=4))
    b = JobFactory(rate="10.00", start_at=now + timedelta(days=1), end_at=now + timedelta(days=2))
    c = JobFactory(rate="20.00", start_at=now + timedelta(days=2), end_at=now + timedelta(days=3))

    def listed(ordering):
        return ids(ok(anon.get(f"/api/v1/jobs/?ordering={ordering}")))

    assert listed("rate") == [b.pk, c.pk, a.pk]
    assert listed("-rate") == [a.pk, c.pk, b.pk]
    assert listed("start_at") == [b.pk, c.pk, a.pk]
    assert listed("-start_at") == [a.pk, c.pk, b.pk]
    assert listed("created_at") == [a.pk, b.pk, c.pk]
    assert listed("-created_at") == [c.pk, b.pk, a.pk]


@pytest.mark.parametrize(
    "query,field",
    [
        ("status=bogus", "status"),
        ("min_rate=abc", "min_rate"),
        ("max_rate=1e999", "max_rate"),
        ("min_rate=NaN", "min_rate"),
        ("client=abc", "client"),
        ("client=-1", "client"),
        ("client=99999999999999999999", "client"),
        ("ordering=title", "ordering"),
        ("ordering=-applications_count", "ordering"),
        ("per_page=0", "per_page"),
        ("per_page=abc", "per_page"),
        ("page=0", "page"),
        ("page=abc", "page"),
    ],
)
def test_job_list_invalid_query_is_400(anon, query, field):
    JobFactory()
    body = err(anon.get(f"/api/v1/jobs/?{query}"), 400, "validation_error")
    assert field in body["details"]


@pytest.mark.parametrize("value", ["99999999999999999999", "²", "٣", "0", "-1", "%00"])
def test_job_list_odd_category_values_are_empty_not_500(anon, value):
    JobFactory()
    assert ok(anon.get("/api/v1/jobs/", {"category": value})) == []


@pytest.mark.parametrize("param", ["category", "skill", "city", "search", "status", "ordering"])
def test_job_list_nul_byte_is_400_not_500(anon, param):
    JobFactory()
    err(anon.get("/api/v1/jobs/", {param: "a\x00b"}), 400, "validation_error")


def test_job_list_pagination_clamp_and_past_end(anon):
    JobFactory.create_batch(3)
    response = anon.get("/api/v1/jobs/?per_page=10000")
    ok(response)
    assert response.json()["pagination"]["per_page"] == 100
    response = anon.get("/api/v1/jobs/?per_page=2&page=2")
    assert len(ok(response)) == 1
    assert response.json()["pagination"]["has_prev"] is True
    err(anon.get("/api/v1/jobs/?per_page=2&page=3"), 404, "not_found")


# --- create ------------------------------------------------------------------------

def test_client_creates_job_with_skills_by_name_and_id(as_client, client_user):
    category = CategoryFactory()
    s1, s2 = SkillFactory(name="Lifting"), SkillFactory(name="Driving")
    data = ok(as_client.post("/api/v1/jobs/", job_body(category, skills=["Lifting", s2.pk]), format="json"), 201)
    assert JOB_FIELDS <= set(data)
    assert data["status"] == "open"
    assert data["client"]["id"] == client_user.pk
    assert sorted(data["skills"]) == ["Driving", "Lifting"]
    assert data["rate"] == "18.50" and data["workers_needed"] == 2 and data["applications_count"] == 0
    job = Job.objects.get(pk=data["id"])
    assert job.client == client_user and set(job.skills.all()) == {s1, s2}


def test_create_by_category_slug_and_unicode_title(as_client):
    category = CategoryFactory(slug="gastro")
    title = "Küchenhilfe — 厨房 👩‍🍳"
    data = ok(as_client.post("/api/v1/jobs/", job_body(category, category="gastro", title=title), format="json"), 201)
    assert data["title"] == title
    assert data["category"]["slug"] == "gastro"


def test_create_ignores_mass_assigned_fields(as_client, client_user):
    other = ClientUserFactory()
    body = job_body(
        CategoryFactory(), client=other.pk, status="completed", applications_count=99, accepted_count=1, id=12345
    )
    data = ok(as_client.post("/api/v1/jobs/", body, format="json"), 201)
    job = Job.objects.get(pk=data["id"])
    assert job.pk != 12345
    assert job.client == client_user
    assert (job.status, job.applications_count, job.accepted_count) == (JobStatus.OPEN, 0, 0)


@pytest.mark.parametrize(
    "who,status,code",
    [("worker", 403, "permission_denied"), ("anon", 401, "not_authenticated")],
)
def test_only_clients_create(who, status, code, anon, as_worker):
    caller = {"worker": as_worker, "anon": anon}[who]
    err(caller.post("/api/v1/jobs/", job_body(CategoryFactory()), format="json"), status, code)
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": ["a"]}, "title"),
        ({"description": "d" * 10001}, "description"),
        ({"rate": "0"}, "rate"),
        ({"rate": "-5"}, "rate"),
        ({"rate": "abc"}, "rate"),
        ({"rate": "123456789012.00"}, "rate"),
        ({"rate": ["1"]}, "rate"),
        ({"workers_needed": 0}, "workers_needed"),
        ({"workers_needed": "many"}, "workers_needed"),
        ({"currency": "XYZ"}, "currency"),
        ({"category": 999999}, "category"),
        ({"category": "no-such-category"}, "category"),
        ({"category": 99999999999999999999}, "category"),
        ({"category": {"id": 1}}, "category"),
        ({"category": "²"}, "category"),
        ({"category": True}, "category"),
        ({"category": None}, "category"),
        ({"category": "bad\x00slug"}, "category"),
        ({"skills": ["nul\x00name"]}, "skills"),
        ({"title": "nul\x00title"}, "title"),
        ({"city": "nul\x00city"}, "city"),
        ({"skills": ["No such skill"]}, "skills"),
        ({"skills": [999999]}, "skills"),
        ({"skills": "Cooking"}, "skills"),
        ({"skills": [{"name": "x"}]}, "skills"),
        ({"skills": [True]}, "skills"),
        ({"start_at": "not a date"}, "start_at"),
        ({"end_at": None}, "end_at"),
        ({"city": None}, "city"),
    ],
)
def test_create_bad_input_is_400(as_client, overrides, field):
    body = err(as_client.post("/api/v1/jobs/", job_body(CategoryFactory(), **overrides), format="json"), 400, "validation_error")
    if field:
        assert field in body["details"]
    assert not Job.objects.exists()


def test_create_end_before_start_is_400(as_client):
    start = timezone.now() + timedelta(days=1)
    body = job_body(CategoryFactory(), start_at=start.isoformat(), end_at=start.isoformat())
    assert "end_at" in err(as_client.post("/api/v1/jobs/", body, format="json"), 400, "validation_error")["details"]


@pytest.mark.parametrize("missing", ["title", "category", "city", "rate", "start_at", "end_at"])
def test_create_missing_field_is_400(as_client, missing):
    body = job_body(CategoryFactory())
    del body[missing]
    assert missing in err(as_client.post("/api/v1/jobs/", body, format="json"), 400, "validation_error")["details"]


def test_create_malformed_json_and_wrong_content_type(as_client):
    err(as_client.post("/api/v1/jobs/", data='{"title": ', content_type="application/json"), 400, "validation_error")
    err(as_client.post("/api/v1/jobs/", data="title=x", content_type="application/x-www-form-urlencoded"), 415,
        "unsupported_media_type")
    err(as_client.post("/api/v1/jobs/", data="[1, 2]", content_type="application/json"), 400, "validation_error")
    assert not Job.objects.exists()


# --- detail, patch, delete -----------------------------------------------------------

def test_job_detail_is_public(anon):
    job = JobFactory(skills=[SkillFactory(name="Sorting")])
    data = ok(anon.get(f"/api/v1/jobs/{job.pk}/"))
    assert data["id"] == job.pk and data["skills"] == ["Sorting"]
    assert JOB_FIELDS <= set(data)


@pytest.mark.parametrize("path", ["/api/v1/jobs/999999/", "/api/v1/jobs/99999999999999999999/", "/api/v1/jobs/abc/"])
def test_job_detail_missing_is_404(anon, path):
    err(anon.get(path), 404, "not_found")


def test_owner_patches_open_job_and_read_only_fields_are_ignored(client_user):
    job = JobFactory(client=client_user)
    other = ClientUserFactory()
    skill = SkillFactory(name="Ladders")
    body = {"title": "Updated", "rate": "25", "skills": ["Ladders"], "client": other.pk, "status": "completed",
            "applications_count": 50, "accepted_count": 1}
    data = ok(auth_client(client_user).patch(f"/api/v1/jobs/{job.pk}/", body, format="json"))
    assert data["title"] == "Updated" and data["rate"] == "25.00" and data["skills"] == ["Ladders"]
    job.refresh_from_db()
    assert job.client == client_user
    assert (job.status, job.applications_count, job.accepted_count) == (JobStatus.OPEN, 0, 0)
    assert list(job.skills.all()) == [skill]


def test_a_job_write_answers_the_job_as_the_serializer_and_the_next_get_show_it(anon, client_user):
    """PATCH and POST build their JSON answer from the job's row values read again
    after the write (jobs.views._job_response): the serializer's data for that
    job, skills in name order, and what the next GET shows."""
    import json

    from rest_framework.renderers import JSONRenderer

    from jobs.serializers import JobSerializer

    for name in ("Zinc roofing", "Alpha", "Mopping"):
        SkillFactory(name=name)
    caller = auth_client(client_user)
    created = ok(caller.post("/api/v1/jobs/", job_body(CategoryFactory(), skills=["Zinc roofing", "Alpha"]),
                             format="json"), 201)
    patched = ok(caller.patch(f"/api/v1/jobs/{created['id']}/",
                              {"title": "Renamed", "skills": ["Mopping", "Zinc roofing", "Alpha"]}, format="json"))
    job = Job.objects.get(pk=created["id"])
    serialized = json.loads(JSONRenderer().render(JobSerializer(Job.objects.reread(job)).data))
    assert patched == serialized == ok(anon.get(f"/api/v1/jobs/{job.pk}/"))
    assert patched["skills"] == ["Alpha", "Mopping", "Zinc roofing"] and patched["title"] == "Renamed"
    assert created["skills"] == ["Alpha", "Zinc roofing"] and created["client"]["id"] == client_user.pk


def test_patch_validation(client_user):
    job = JobFactory(client=client_user)
    caller = auth_client(client_user)
    err(caller.patch(f"/api/v1/jobs/{job.pk}/", {"end_at": (job.start_at - timedelta(hours=1)).isoformat()},
                     format="json"), 400, "validation_error")
    err(caller.patch(f"/api/v1/jobs/{job.pk}/", {"rate": "-1"}, format="json"), 400, "validation_error")
    err(caller.patch(f"/api/v1/jobs/{job.pk}/", {"title": "x" * 201}, format="json"), 400, "validation_error")
    err(caller.put(f"/api/v1/jobs/{job.pk}/", job_body(job.category), format="json"), 405, "method_not_allowed")
    job.refresh_from_db()
    assert job.rate == 20


@pytest.mark.parametrize("state", ["in_progress", "completed", "cancelled"])
def test_patch_outside_open_is_409(client_user, state):
    job = JobFactory(client=client_user, status=state)
    err(auth_client(client_user).patch(f"/api/v1/jobs/{job.pk}/", {"title": "x"}, format="json"), 409, "conflict")


def test_delete_cancels(client_user):
    job = JobFactory(client=client_user)
    response = auth_client(client_user).delete(f"/api/v1/jobs/{job.pk}/")
    assert response.status_code == 204
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    err(auth_client(client_user).delete(f"/api/v1/jobs/{job.pk}/"), 409, "conflict")


# --- the authorization matrix ---------------------------------------------------------
# Every endpoint taking an id x {owner, another client, another worker, anonymous, staff}.
# Jobs are public: owner-only writes answer 403 to others. Applications are private:
# others get 404. The worker role is needed to apply (clients and staff: 403).

OWNER, OTHER_CLIENT, OTHER_WORKER, ANON, STAFF, APPLICANT = (
    "owner", "other_client", "other_worker", "anon", "staff", "applicant",
)


@pytest.fixture
def world():
    owner = ClientUserFactory()
    applicant = WorkerUserFactory()
    job = JobFactory(client=owner, workers_needed=2)
    application = ApplicationFactory(job=job, worker=applicant)
    callers = {
        OWNER: auth_client(owner),
        OTHER_CLIENT: auth_client(ClientUserFactory()),
        OTHER_WORKER: auth_client(WorkerUserFactory()),
        STAFF: auth_client(StaffUserFactory()),
        APPLICANT: auth_client(applicant),
        ANON: APIClient(),
    }
    return {"job": job, "application": application, "callers": callers}


MATRIX = [
    # (method, path template, body, {caller: expected status})
    ("get", "/api/v1/jobs/{job}/", None,
     {OWNER: 200, OTHER_CLIENT: 200, OTHER_WORKER: 200, ANON: 200, STAFF: 200}),
    ("patch", "/api/v1/jobs/{job}/", {"title": "Changed"},
     {OTHER_CLIENT: 403, OTHER_WORKER: 403, ANON: 401, STAFF: 403, APPLICANT: 403, OWNER: 200}),
    ("post", "/api/v1/jobs/{job}/apply/", {},
     {OWNER: 403, OTHER_CLIENT: 403, ANON: 401, STAFF: 403, APPLICANT: 409, OTHER_WORKER: 201}),
    ("get", "/api/v1/jobs/{job}/applications/", None,
     {OTHER_CLIENT: 404, OTHER_WORKER: 404, APPLICANT: 404, ANON: 401, STAFF: 200, OWNER: 200}),
    ("post", "/api/v1/jobs/{job}/save/", None,
     {ANON: 401, OWNER: 201, OTHER_CLIENT: 201, OTHER_WORKER: 201, STAFF: 201}),
    ("delete", "/api/v1/jobs/{job}/save/", None,
     {ANON: 401, OWNER: 204, OTHER_CLIENT: 204, OTHER_WORKER: 204, STAFF: 204}),
    ("post", "/api/v1/jobs/{job}/start/", None,
     {OTHER_CLIENT: 403, OTHER_WORKER: 403, ANON: 401, STAFF: 403, OWNER: 409}),
    ("post", "/api/v1/jobs/{job}/complete/", None,
     {OTHER_CLIENT: 403, OTHER_WORKER: 403, ANON: 401, STAFF: 403, OWNER: 409}),
    ("post", "/api/v1/applications/{application}/accept/", None,
     {OTHER_CLIENT: 404, OTHER_WORKER: 404, APPLICANT: 404, ANON: 401, STAFF: 404, OWNER: 200}),
    ("post", "/api/v1/applications/{application}/reject/", None,
     {OTHER_CLIENT: 404, OTHER_WORKER: 404, APPLICANT: 404, ANON: 401, STAFF: 404, OWNER: 200}),
    ("post", "/api/v1/applications/{application}/withdraw/", None,
     {OTHER_CLIENT: 404, OTHER_WORKER: 404, OWNER: 404, ANON: 401, STAFF: 404, APPLICANT: 200}),
    ("delete", "/api/v1/jobs/{job}/", None,
     {OTHER_CLIENT: 403, OTHER_WORKER: 403, ANON: 401, STAFF: 403, APPLICANT: 403, OWNER: 204}),
]
CODES = {200: None, 201: None, 204: None, 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
         409: "conflict"}


@pytest.mark.parametrize("method,template,body,expected", MATRIX, ids=[f"{m} {t}" for m, t, _, _ in MATRIX])
def test_authorization_matrix(world, method, template, body, expected):
    job, application = world["job"], world["application"]
    before = (job.title, job.status, application.status)
    path = template.format(job=job.pk, application=application.pk)
    # Denied callers first: none of them may change anything; then the allowed one.
    for who, status in sorted(expected.items(), key=lambda kv: kv[1] >= 300, reverse=True):
        caller = world["callers"][who]
        kwargs = {"format": "json"} if body is not None else {}
        response = getattr(caller, method)(path, body, **kwargs) if body is not None else getattr(caller, method)(path)
        assert response.status_code == status, (who, response.content)
        if CODES[status]:
            assert response.json()["error"] == CODES[status]
            job.refresh_from_db()
            application.refresh_from_db()
            if status != 409:
                assert (job.title, job.status, application.status) == before, who


def test_missing_ids_are_404_for_everyone(world):
    owner = world["callers"][OWNER]
    for path in ["/api/v1/jobs/999999/apply/", "/api/v1/jobs/999999/applications/", "/api/v1/jobs/999999/save/",
                 "/api/v1/jobs/999999/start/", "/api/v1/applications/999999/accept/",
                 "/api/v1/applications/999999/withdraw/"]:
        caller = world["callers"][OTHER_WORKER] if "apply" in path or "withdraw" in path else owner
        method = caller.get if path.endswith("applications/") else caller.post
        err(method(path), 404, "not_found")
    err(owner.patch("/api/v1/jobs/999999/", {"title": "x"}, format="json"), 404, "not_found")
    err(owner.delete("/api/v1/jobs/999999/"), 404, "not_found")
    # Beyond bigint: no row, not a driver overflow.
    huge = "99999999999999999999"
    err(owner.post(f"/api/v1/applications/{huge}/accept/"), 404, "not_found")
    err(owner.get(f"/api/v1/jobs/{huge}/applications/"), 404, "not_found")
    err(owner.post(f"/api/v1/jobs/{huge}/save/"), 404, "not_found")


# --- apply ------------------------------------------------------------------------------

def test_apply_returns_application_and_counts(worker_user):
    job = JobFactory()
    caller = auth_client(worker_user)
    data = ok(caller.post(f"/api/v1/jobs/{job.pk}/apply/", {"cover_note": "Fünf Jahre Erfahrung"}, format="json"), 201)
    assert APPLICATION_FIELDS <= set(data)
    assert data["job"] == {"id": job.pk, "title": job.title, "status": "open"}
    assert data["worker"]["id"] == worker_user.pk and data["status"] == "pending"
    assert data["cover_note"] == "Fünf Jahre Erfahrung"
    err(caller.post(f"/api/v1/jobs/{job.pk}/apply/", {}, format="json"), 409, "conflict")
    job.refresh_from_db()
    assert job.applications_count == 1
    assert ok(caller.get(f"/api/v1/jobs/{job.pk}/"))["applications_count"] == 1


def test_apply_with_empty_body_and_bad_note(as_worker):
    job = JobFactory()
    err(as_worker.post(f"/api/v1/jobs/{job.pk}/apply/", {"cover_note": "x" * 2001}, format="json"), 400,
        "validation_error")
    ok(as_worker.post(f"/api/v1/jobs/{job.pk}/apply/"), 201)


@pytest.mark.parametrize("state", ["filled", "in_progress", "completed", "cancelled"])
def test_apply_to_job_not_open_is_409(as_worker, state):
    job = JobFactory(status=state)
    err(as_worker.post(f"/api/v1/jobs/{job.pk}/apply/", {}, format="json"), 409, "conflict")
    assert not Application.objects.exists()


def test_apply_is_throttled(monkeypatch, worker_user):
    from core.throttling import UserScopedThrottle

    rates = {**UserScopedThrottle.THROTTLE_RATES, "applications": "2/min"}
    monkeypatch.setattr(UserScopedThrottle, "THROTTLE_RATES", rates)
    caller = auth_client(worker_user)
    jobs = JobFactory.create_batch(3)
    ok(caller.post(f"/api/v1/jobs/{jobs[0].pk}/apply/"), 201)
    ok(caller.post(f"/api/v1/jobs/{jobs[1].pk}/apply/"), 201)
    err(caller.post(f"/api/v1/jobs/{jobs[2].pk}/apply/"), 429, "throttled")
    # Only applying is throttled: reading and saving are not.
    ok(caller.get(f"/api/v1/jobs/{jobs[2].pk}/"))
    ok(caller.post(f"/api/v1/jobs/{jobs[2].pk}/save/"), 201)
    assert Application.objects.filter(worker=worker_user).count() == 2


# --- a job's applications ---------------------------------------------------------------

def test_job_applications_for_owner_newest_first(client_user):
    job = JobFactory(client=client_user)
    first, second = ApplicationFactory(job=job), ApplicationFactory(job=job)
    ApplicationFactory()  # another job's
    data = ok(auth_client(client_user).get(f"/api/v1/jobs/{job.pk}/applications/"))
    assert ids(data) == [second.pk, first.pk]
    assert APPLICATION_FIELDS <= set(data[0])


# --- lifecycle over HTTP ------------------------------------------------------------------

def test_full_lifecycle(client_user):
    owner = auth_client(client_user)
    job = JobFactory(client=client_user, workers_needed=2)
    workers = WorkerUserFactory.create_batch(3)
    app_ids = [ok(auth_client(w).post(f"/api/v1/jobs/{job.pk}/apply/"), 201)["id"] for w in workers]
    assert ok(owner.get(f"/api/v1/jobs/{job.pk}/"))["applications_count"] == 3
    err(owner.post(f"/api/v1/jobs/{job.pk}/start/"), 409, "conflict")  # still open

    assert ok(owner.post(f"/api/v1/applications/{app_ids[0]}/accept/"))["status"] == "accepted"
    err(owner.post(f"/api/v1/applications/{app_ids[0]}/accept/"), 409, "conflict")
    data = ok(owner.post(f"/api/v1/applications/{app_ids[1]}/accept/"))
    assert data["job"]["status"] == "filled"
    err(owner.post(f"/api/v1/applications/{app_ids[2]}/accept/"), 409, "conflict")  # full
    assert ok(owner.post(f"/api/v1/applications/{app_ids[2]}/reject/"))["status"] == "rejected"
    # Filled: the terms are frozen, the wording is not (jobs.services FROZEN_TERMS).
    err(owner.patch(f"/api/v1/jobs/{job.pk}/", {"rate": "99.00"}, format="json"), 409, "conflict")
    assert ok(owner.patch(f"/api/v1/jobs/{job.pk}/", {"title": "late edit"}, format="json"))["title"] == "late edit"

    err(owner.post(f"/api/v1/jobs/{job.pk}/complete/"), 409, "conflict")  # not started
    err(owner.post(f"/api/v1/jobs/{job.pk}/start/"), 409, "conflict")  # two days early
    with time_machine.travel(job.start_at - timedelta(minutes=20), tick=False):
        assert ok(owner.post(f"/api/v1/jobs/{job.pk}/start/"))["status"] == "in_progress"
        err(owner.post(f"/api/v1/jobs/{job.pk}/start/"), 409, "conflict")
        err(owner.delete(f"/api/v1/jobs/{job.pk}/"), 409, "conflict")  # in progress: no cancel
        err(owner.post(f"/api/v1/jobs/{job.pk}/complete/"), 409, "conflict")  # before its start
    with time_machine.travel(job.start_at + timedelta(hours=8), tick=False):
        assert ok(owner.post(f"/api/v1/jobs/{job.pk}/complete/"))["status"] == "completed"
        err(owner.post(f"/api/v1/jobs/{job.pk}/complete/"), 409, "conflict")

    completed = dict(User.objects.filter(pk__in=[client_user.pk, *(w.pk for w in workers)])
                     .values_list("pk", "completed_jobs"))
    assert completed == {client_user.pk: 1, workers[0].pk: 1, workers[1].pk: 1, workers[2].pk: 0}


def test_cancel_filled_job(client_user):
    job = JobFactory(client=client_user)
    app = ApplicationFactory(job=job)
    ok(auth_client(client_user).post(f"/api/v1/applications/{app.pk}/accept/"))
    assert auth_client(client_user).delete(f"/api/v1/jobs/{job.pk}/").status_code == 204
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_withdraw_then_accept_is_409(worker_user):
    app = ApplicationFactory(worker=worker_user)
    assert ok(auth_client(worker_user).post(f"/api/v1/applications/{app.pk}/withdraw/"))["status"] == "withdrawn"
    err(auth_client(worker_user).post(f"/api/v1/applications/{app.pk}/withdraw/"), 409, "conflict")
    err(auth_client(app.job.client).post(f"/api/v1/applications/{app.pk}/accept/"), 409, "conflict")
    err(auth_client(app.job.client).post(f"/api/v1/applications/{app.pk}/reject/"), 409, "conflict")
    app.refresh_from_db()
    assert app.status == ApplicationStatus.WITHDRAWN


# --- /applications/ -------------------------------------------------------------------------

def test_applications_list_per_role():
    client = ClientUserFactory()
    worker = WorkerUserFactory()
    mine_as_worker = ApplicationFactory(worker=worker)
    to_my_job = ApplicationFactory(job=JobFactory(client=client))
    unrelated = ApplicationFactory()
    assert ids(ok(auth_client(worker).get("/api/v1/applications/"))) == [mine_as_worker.pk]
    assert ids(ok(auth_client(client).get("/api/v1/applications/"))) == [to_my_job.pk]
    assert ok(auth_client(ClientUserFactory()).get("/api/v1/applications/")) == []
    data = ok(auth_client(unrelated.worker).get("/api/v1/applications/"))
    assert APPLICATION_FIELDS <= set(data[0])
    assert data[0]["job"] == {"id": unrelated.job.pk, "title": unrelated.job.title, "status": "open"}


def test_applications_list_status_filter(worker_user):
    pending = ApplicationFactory(worker=worker_user)
    rejected = ApplicationFactory(worker=worker_user, status=ApplicationStatus.REJECTED)
    caller = auth_client(worker_user)
    assert ids(ok(caller.get("/api/v1/applications/?status=pending"))) == [pending.pk]
    assert ids(ok(caller.get("/api/v1/applications/?status=rejected"))) == [rejected.pk]
    assert ids(ok(caller.get("/api/v1/applications/"))) == [rejected.pk, pending.pk]
    err(caller.get("/api/v1/applications/?status=nope"), 400, "validation_error")
    err(caller.get("/api/v1/applications/?per_page=0"), 400, "validation_error")


def test_applications_list_needs_auth(anon):
    err(anon.get("/api/v1/applications/"), 401, "not_authenticated")


# --- saved jobs -------------------------------------------------------------------------------

def test_save_and_unsave(worker_user):
    job = JobFactory()
    caller = auth_client(worker_user)
    data = ok(caller.post(f"/api/v1/jobs/{job.pk}/save/"), 201)
    assert data["job"]["id"] == job.pk and data["saved_at"]
    ok(caller.post(f"/api/v1/jobs/{job.pk}/save/"), 200)
    assert SavedJob.objects.filter(user=worker_user).count() == 1
    assert caller.delete(f"/api/v1/jobs/{job.pk}/save/").status_code == 204
    assert not SavedJob.objects.exists()
    # Unsaving what is not saved is the same end state: 204 too.
    assert caller.delete(f"/api/v1/jobs/{job.pk}/save/").status_code == 204


def test_saved_jobs_newest_saved_first(worker_user):
    old_job, new_job = JobFactory(), JobFactory()
    SavedJobFactory(user=worker_user, job=new_job)
    SavedJobFactory(user=worker_user, job=old_job)
    SavedJobFactory(job=new_job)  # someone else's
    data = ok(auth_client(worker_user).get("/api/v1/users/me/saved-jobs/"))
    assert ids(data) == [old_job.pk, new_job.pk]
    assert JOB_FIELDS <= set(data[0])
    assert data[0]["saved_at"] >= data[1]["saved_at"]


def test_saved_jobs_needs_auth(anon):
    err(anon.get("/api/v1/users/me/saved-jobs/"), 401, "not_authenticated")
    err(anon.get("/api/v1/users/me/saved-jobs/?per_page=0"), 401, "not_authenticated")
