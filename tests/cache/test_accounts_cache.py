"""Read-your-writes for the accounts endpoints (/users/{id}/, /users/me/, /skills/):
GET (MISS) -> GET (HIT) -> write -> the next GET shows the write.
``transaction=True`` so that the scope bumps, which run in ``transaction.on_commit``,
really happen as in production."""
import pytest
from rest_framework.test import APIClient

from accounts.cache import SKILLS
from accounts.models import Skill, User
from core.cache import get_versions
from tests.accounts.factories import SkillFactory, WorkerUserFactory
from tests.cache.helpers import fresh
from tests.conftest import auth_client

pytestmark = pytest.mark.django_db(transaction=True)

ME = "/api/v1/users/me/"
SKILLS_URL = "/api/v1/skills/"


def user_url(user):
    return f"/api/v1/users/{user.pk}/"


def warm(caller, path):
    """GET twice: a MISS that builds the entry, then a HIT with the same data."""
    first = caller.get(path)
    assert first.status_code == 200, first.content
    assert first["X-Cache"] == "MISS"
    second = caller.get(path)
    assert second["X-Cache"] == "HIT"
    assert second.json()["data"] == first.json()["data"]
    return second.json()["data"]


def test_public_user_miss_then_hit_without_queries(anon, django_assert_num_queries):
    user = WorkerUserFactory(skills=[SkillFactory(name="Masonry")])
    first = anon.get(user_url(user))
    assert first["X-Cache"] == "MISS"
    with django_assert_num_queries(0):
        second = anon.get(user_url(user))
    assert second["X-Cache"] == "HIT"
    assert second.json()["data"] == first.json()["data"]
    assert second.json()["correlation_id"] == second["X-Request-ID"] != first["X-Request-ID"]


def test_patch_me_shows_in_public_profile_and_me(anon):
    SkillFactory(name="Plumbing")
    user = WorkerUserFactory(first_name="Old")
    me = auth_client(user)
    assert warm(anon, user_url(user))["first_name"] == "Old"
    assert warm(me, ME)["first_name"] == "Old"
    response = me.patch(
        ME, {"first_name": "New", "profile": {"city": "Porto", "skills": ["plumbing"], "hourly_rate": "18.00"}},
        format="json",
    )
    assert response.status_code == 200
    public = fresh(anon, user_url(user))
    assert public["first_name"] == "New"
    assert public["profile"] == {"bio": "", "city": "Porto", "skills": ["Plumbing"], "hourly_rate": "18.00"}
    own = fresh(me, ME)
    assert own["first_name"] == "New" and own["profile"]["skills"] == ["Plumbing"]


@pytest.mark.parametrize(
    "body, check",
    [
        ({"profile": {"bio": "Just the bio"}}, lambda d: d["profile"]["bio"] == "Just the bio"),
        ({"profile": {"skills": []}}, lambda d: d["profile"]["skills"] == []),
        ({"last_name": "Only-Name"}, lambda d: d["last_name"] == "Only-Name"),
    ],
)
def test_each_kind_of_edit_retires_the_public_profile(anon, body, check):
    user = WorkerUserFactory(skills=[SkillFactory(name="Tiling")])
    warm(anon, user_url(user))
    assert auth_client(user).patch(ME, body, format="json").status_code == 200
    assert check(fresh(anon, user_url(user)))


def test_phone_edit_shows_in_me(as_worker):
    warm(as_worker, ME)
    assert as_worker.patch(ME, {"phone": "+31 20 555"}, format="json").status_code == 200
    assert fresh(as_worker, ME)["phone"] == "+31 20 555"


def test_profile_skill_edit_keeps_the_skill_list_cached(anon):
    """A profile's skills are its own: changing them must not retire /skills/ (and
    with it every job list)."""
    SkillFactory(name="Roofing")
    user = WorkerUserFactory()
    warm(anon, SKILLS_URL)
    before = get_versions([SKILLS])
    assert auth_client(user).patch(ME, {"profile": {"skills": ["Roofing"]}}, format="json").status_code == 200
    assert get_versions([SKILLS]) == before
    assert anon.get(SKILLS_URL)["X-Cache"] == "HIT"
    assert fresh(anon, user_url(user))["profile"]["skills"] == ["Roofing"]


def test_private_me_is_never_served_to_another_user():
    a, b = WorkerUserFactory(), WorkerUserFactory()
    client_a, client_b = auth_client(a), auth_client(b)
    assert warm(client_a, ME)["email"] == a.email
    response = client_b.get(ME)
    assert response["X-Cache"] == "MISS"
    assert response.json()["data"]["email"] == b.email
    assert client_a.get(ME).json()["data"]["email"] == a.email


def test_me_after_logout_is_401_not_a_cached_copy(as_worker):
    warm(as_worker, ME)
    assert as_worker.post("/api/v1/auth/logout/").status_code == 204
    response = as_worker.get(ME)
    assert response.status_code == 401
    assert "email" not in response.content.decode()


def test_email_verification_shows_in_me(as_worker):
    from django.core import mail

    assert warm(as_worker, ME)["is_email_verified"] is False
    as_worker.post("/api/v1/auth/otp/request/")
    code = mail.outbox[-1].body.split("code is ")[1][:6]
    assert as_worker.post("/api/v1/auth/otp/verify/", {"code": code}, format="json").status_code == 200
    assert fresh(as_worker, ME)["is_email_verified"] is True


def test_skill_rename_shows_in_list_and_profiles(anon):
    skill = SkillFactory(name="Gardening")
    user = WorkerUserFactory(skills=[skill])
    me = auth_client(user)
    assert warm(anon, SKILLS_URL)[0]["name"] == "Gardening"
    warm(anon, user_url(user))
    warm(me, ME)
    skill.name = "Landscaping"
    skill.save()
    assert fresh(anon, SKILLS_URL)[0]["name"] == "Landscaping"
    assert fresh(anon, user_url(user))["profile"]["skills"] == ["Landscaping"]
    assert fresh(me, ME)["profile"]["skills"] == ["Landscaping"]


def test_new_skill_appears_in_the_list(anon):
    SkillFactory(name="Alpha")
    assert [s["name"] for s in warm(anon, SKILLS_URL)] == ["Alpha"]
    Skill.objects.create(name="Beta", slug="beta")
    assert [s["name"] for s in fresh(anon, SKILLS_URL)] == ["Alpha", "Beta"]


def test_deactivated_user_is_404_at_once(anon):
    user = WorkerUserFactory()
    warm(anon, user_url(user))
    user.is_active = False
    user.save()
    response = anon.get(user_url(user))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_rating_change_through_save_shows(anon):
    user = WorkerUserFactory()
    assert warm(anon, user_url(user))["rating_avg"] is None
    fresh_user = User.objects.get(pk=user.pk)
    fresh_user.rating_sum, fresh_user.rating_count = 5, 1
    fresh_user.save(update_fields=["rating_sum", "rating_count"])
    data = fresh(anon, user_url(user))
    assert (data["rating_avg"], data["rating_count"]) == ("5.00", 1)


def test_registration_then_login_see_fresh_me(anon):
    body = {"email": "fresh@example.com", "password": "Tangerine-Orbit-4711", "role": "client",
            "first_name": "F", "last_name": "R"}
    token = anon.post("/api/v1/auth/register/", body, format="json").json()["data"]["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert warm(client, ME)["role"] == "client"
    assert client.patch(ME, {"first_name": "Frida"}, format="json").status_code == 200
    assert fresh(client, ME)["first_name"] == "Frida"


def test_skill_linked_from_the_skill_side_shows_in_the_profile(anon):
    """The admin (or a script) may link from the skill side: the profile still
    sees it, and the skill list is not retired for it."""
    skill = SkillFactory(name="Drywall")
    user = WorkerUserFactory()
    warm(anon, SKILLS_URL)
    assert warm(anon, user_url(user))["profile"]["skills"] == []
    skill.profiles.add(user.profile)
    assert fresh(anon, user_url(user))["profile"]["skills"] == ["Drywall"]
    assert anon.get(SKILLS_URL)["X-Cache"] == "HIT"
    skill.delete()
    assert fresh(anon, user_url(user))["profile"]["skills"] == []
    assert fresh(anon, SKILLS_URL) == []
