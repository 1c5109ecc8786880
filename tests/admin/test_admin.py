"""The admin's forms work with the custom user (e-mail login, profile inline), and
admin writes keep the denormalised counters (job application counts, user
ratings) true to the rows and bump the cache like the services do."""
import pytest
from django.contrib.auth import authenticate
from django.urls import reverse
from zeal import zeal_ignore

from accounts.models import EmailOTP, Profile, User
from core.cache import get_versions
from jobs.cache import job_scope
from jobs.models import Application
from ratings.models import Review
from tests.accounts.factories import ClientUserFactory, SkillFactory, StaffUserFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory, JobFactory

PROFILE_INLINE_EMPTY = {
    "profile-TOTAL_FORMS": "1", "profile-INITIAL_FORMS": "0", "profile-MIN_NUM_FORMS": "0", "profile-MAX_NUM_FORMS": "1",
}


@pytest.fixture
def admin_client(client, db):
    client.force_login(StaffUserFactory())
    return client


def test_add_user_with_email_login_and_profile(admin_client):
    skill = SkillFactory(name="Barista")
    response = admin_client.post(reverse("admin:accounts_user_add"), {
        "email": "New.Person@Example.COM", "role": "worker", "first_name": "New", "last_name": "Person",
        "usable_password": "true", "password1": "a-long-pass-phrase-42", "password2": "a-long-pass-phrase-42",
        **PROFILE_INLINE_EMPTY, "profile-0-city": "Berlin", "profile-0-bio": "Hi", "profile-0-skills": [skill.pk],
    })
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    user = User.objects.get(email="new.person@example.com")  # stored lower-cased
    assert user.role == "worker"
    assert authenticate(email="new.person@example.com", password="a-long-pass-phrase-42") == user
    assert user.profile.city == "Berlin"
    assert list(user.profile.skills.all()) == [skill]


def test_add_user_without_profile_data_still_gets_a_profile(admin_client):
    response = admin_client.post(reverse("admin:accounts_user_add"), {
        "email": "bare@example.com", "role": "client", "first_name": "B", "last_name": "Are",
        "usable_password": "false", **PROFILE_INLINE_EMPTY,
    })
    assert response.status_code == 302
    user = User.objects.get(email="bare@example.com")
    assert Profile.objects.filter(user=user).exists()
    assert not user.has_usable_password()


def test_add_user_refuses_an_existing_email_in_other_case(admin_client):
    ClientUserFactory(email="taken@example.com")
    response = admin_client.post(reverse("admin:accounts_user_add"), {
        "email": "TAKEN@example.com", "role": "client", "first_name": "T", "last_name": "K",
        "usable_password": "false", **PROFILE_INLINE_EMPTY,
    })
    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert User.objects.filter(email="taken@example.com").count() == 1


def test_change_user_and_profile(admin_client):
    user = WorkerUserFactory(email="w@example.com")
    url = reverse("admin:accounts_user_change", args=[user.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {
        "email": "w@example.com", "first_name": "Renamed", "last_name": "W", "phone": "+49 1", "role": "worker",
        "is_active": "on",
        "profile-TOTAL_FORMS": "1", "profile-INITIAL_FORMS": "1", "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1", "profile-0-id": user.profile.pk, "profile-0-user": user.pk,
        "profile-0-city": "Hamburg", "profile-0-bio": "", "profile-0-hourly_rate": "21.50",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.first_name == "Renamed"
    assert user.profile.city == "Hamburg"
    assert str(user.profile.hourly_rate) == "21.50"


def test_user_reputation_counters_are_read_only(admin_client):
    user = WorkerUserFactory()
    html = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk])).content.decode()
    assert 'name="rating_sum"' not in html
    assert 'name="completed_jobs"' not in html


def test_otp_hash_is_read_only_and_codes_cannot_be_added(admin_client):
    from django.utils import timezone

    otp = EmailOTP.objects.create(user=WorkerUserFactory(), code_hash="f" * 64, expires_at=timezone.now())
    html = admin_client.get(reverse("admin:accounts_emailotp_change", args=[otp.pk])).content.decode()
    assert "f" * 64 in html
    assert 'name="code_hash"' not in html
    assert admin_client.get(reverse("admin:accounts_emailotp_add")).status_code == 403


def test_foreign_keys_to_users_are_autocomplete_not_dropdowns(admin_client):
    users = [WorkerUserFactory() for _ in range(5)]
    # (Payments have no add page: the API makes them, under the payment rules.)
    for name in ("jobs_job_add", "jobs_application_add", "ratings_review_add", "accounts_apitoken_add"):
        html = admin_client.get(reverse(f"admin:{name}")).content.decode()
        assert "admin-autocomplete" in html, name
        assert not any(u.email in html for u in users), name


def _application_post(job, worker):
    return {"job": job.pk, "worker": worker.pk, "cover_note": "via admin"}


# An admin action runs the service once per selected row, each in its own
# transaction with the service's row locks (the locked re-read of the job and the
# row is the rule's, not a lazy load): a per-row get() by design, not an N+1.
SERVICE_LOCKS = [
    {"model": "jobs.Job", "field": "get()"},
    {"model": "jobs.Application", "field": "get()"},
    {"model": "payments.Payment", "field": "get()"},
]


def _action(admin_client, model, action, objs):
    with zeal_ignore(SERVICE_LOCKS):
        return admin_client.post(
            reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
            {"action": action, "_selected_action": [obj.pk for obj in objs]},
            follow=True,
        )


def _messages(response):
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def test_admin_application_writes_recount_the_job(admin_client, django_capture_on_commit_callbacks):
    """Adding is the apply service (pending, counted); accepting is the accept
    action (the accept service); deleting an application that is not a hire
    recounts the job from the rows."""
    job = JobFactory(workers_needed=2)
    first = ApplicationFactory(job=job)
    job.applications_count = 1
    job.save()
    before = get_versions([job_scope(job.pk)])[job_scope(job.pk)]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:jobs_application_add"), {**_application_post(job, WorkerUserFactory()), "status": "accepted"}
        )
    assert response.status_code == 302
    added = Application.objects.exclude(pk=first.pk).get()
    assert added.status == "pending"  # the status is not the admin's to set
    job.refresh_from_db()
    assert (job.applications_count, job.accepted_count) == (2, 0)
    assert get_versions([job_scope(job.pk)])[job_scope(job.pk)] > before

    response = _action(admin_client, Application, "accept_applications", [first, added])
    assert ("success", "2 application(s) accepted.") in _messages(response)
    job.refresh_from_db()
    assert (job.applications_count, job.accepted_count, job.status) == (2, 2, "filled")

    # Deleting an application that is not a hire (spam) recounts the job from the rows.
    spam = ApplicationFactory(job=job)
    response = admin_client.post(reverse("admin:jobs_application_delete", args=[spam.pk]), {"post": "yes"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.applications_count, job.accepted_count, job.status) == (2, 2, "filled")

    # A hire is not deleted, alone or among others (tests/admin/test_admin_rules.py).
    response = admin_client.post(reverse("admin:jobs_application_changelist"), {
        "action": "delete_selected", "_selected_action": list(job.applications.values_list("pk", flat=True)),
        "post": "yes",
    })
    assert response.status_code == 200
    job.refresh_from_db()
    assert (job.applications_count, job.accepted_count, job.applications.count()) == (2, 2, 2)


def test_admin_cannot_accept_past_workers_needed(admin_client):
    job = JobFactory(workers_needed=1)
    first, second = ApplicationFactory(job=job), ApplicationFactory(job=job)
    # The change form cannot set a status.
    response = admin_client.post(reverse("admin:jobs_application_change", args=[second.pk]),
                                 {"status": "accepted", "cover_note": ""})
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.status == "pending"
    # Two accepts into one slot: the first fills the job, the second is an error message.
    response = _action(admin_client, Application, "accept_applications", [first, second])
    assert response.status_code == 200
    messages = _messages(response)
    assert ("success", "1 application(s) accepted.") in messages
    assert any(level == "error" and "it accepts no more workers" in text for level, text in messages), messages
    second.refresh_from_db()
    job.refresh_from_db()
    assert (second.status, job.accepted_count, job.status) == ("pending", 1, "filled")


def test_admin_review_writes_recount_the_rating(admin_client):
    job = JobFactory(status="completed")
    worker = WorkerUserFactory()
    Application.objects.create(job=job, worker=worker, status="accepted")
    response = admin_client.post(reverse("admin:ratings_review_add"), {
        "job": job.pk, "reviewer": job.client.pk, "reviewed": worker.pk, "rating": 4, "comment": "Good",
    })
    assert response.status_code == 302
    worker.refresh_from_db()
    assert (worker.rating_sum, worker.rating_count) == (4, 1)

    review = Review.objects.get()
    response = admin_client.post(
        reverse("admin:ratings_review_change", args=[review.pk]), {"rating": 2, "comment": "Edited"}
    )
    assert response.status_code == 302
    review.refresh_from_db()
    assert (review.comment, review.rating) == ("Edited", 2)
    worker.refresh_from_db()
    assert (worker.rating_sum, worker.rating_count) == (2, 1)

    response = admin_client.post(reverse("admin:ratings_review_delete", args=[review.pk]), {"post": "yes"})
    assert response.status_code == 302
    worker.refresh_from_db()
    assert (worker.rating_sum, worker.rating_count) == (0, 0)
