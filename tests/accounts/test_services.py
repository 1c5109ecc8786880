"""accounts.services: the rules behind registration, login, e-mail codes and
profile edits, called directly; and, on PostgreSQL, what concurrent calls do."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authtoken.models import Token

from accounts import services
from accounts.cache import SKILLS, user_scope
from accounts.models import EmailOTP, Profile, Role, User
from core.cache import get_versions
from core.envelope import Conflict
from tests.accounts.factories import SkillFactory, UserFactory, WorkerUserFactory
from tests.concurrency import run_together

PASSWORD = "Tangerine-Orbit-4711"


def register(**overrides):
    kwargs = {"email": "Ann@Example.com", "password": PASSWORD, "role": Role.WORKER, "first_name": "Ann",
              "last_name": "Lee"}
    kwargs.update(overrides)
    return services.user_register(**kwargs)


def wrong_for(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def mailed_code() -> str:
    return mail.outbox[-1].body.split("code is ")[1][:6]


@pytest.mark.django_db
class TestRegisterUser:
    def test_user_profile_and_token_together(self):
        user, key = register()
        assert user.email == "ann@example.com"
        assert user.role == Role.WORKER and not user.is_staff
        assert Profile.objects.filter(user=user).exists()
        assert Token.objects.get(user=user).key == key

    def test_duplicate_is_conflict_and_rolls_back(self):
        register()
        with pytest.raises(Conflict):
            register(email="ANN@example.COM", first_name="Other")
        assert User.objects.count() == 1
        assert Profile.objects.count() == 1 and Token.objects.count() == 1

    def test_password_validators_see_the_user(self):
        with pytest.raises(exceptions.ValidationError) as info:
            register(password="ann@example.com")
        assert "password" in info.value.detail
        assert not User.objects.exists()

    @pytest.mark.parametrize("role", ["admin", ""])
    def test_role_is_client_or_worker(self, role):
        with pytest.raises(exceptions.ValidationError):
            register(role=role)


@pytest.mark.django_db
class TestLoginLogout:
    def test_login_reuses_the_token_and_logout_revokes_it(self, rf):
        user, key = register()
        same_user, same_key = services.user_login(request=rf.post("/"), email=" ANN@example.com", password=PASSWORD)
        assert same_user == user and same_key == key
        services.user_logout(user=user)
        assert not Token.objects.filter(user=user).exists()
        _, new_key = services.user_login(request=rf.post("/"), email="ann@example.com", password=PASSWORD)
        assert new_key != key

    def test_inactive_wrong_and_unknown_are_the_same_error(self, rf):
        user, _ = register()
        errors = []
        for email, password in [("ann@example.com", "wrong"), ("nobody@example.com", PASSWORD)]:
            with pytest.raises(exceptions.ValidationError) as info:
                services.user_login(request=rf.post("/"), email=email, password=password)
            errors.append(info.value.detail)
        User.objects.filter(pk=user.pk).update(is_active=False)
        with pytest.raises(exceptions.ValidationError) as info:
            services.user_login(request=rf.post("/"), email="ann@example.com", password=PASSWORD)
        errors.append(info.value.detail)
        assert errors[0] == errors[1] == errors[2]


@pytest.mark.django_db
class TestEmailOTP:
    def test_hash_is_keyed_per_user_and_hides_the_code(self):
        a = services.email_otp_hash(user_id=1, code="123456")
        assert a == services.email_otp_hash(user_id=1, code="123456")
        assert a != services.email_otp_hash(user_id=2, code="123456")
        assert a != services.email_otp_hash(user_id=1, code="123457")
        assert "123456" not in a

    def test_request_retires_earlier_codes_and_stores_no_plain_code(self):
        user = WorkerUserFactory()
        first = services.email_otp_request(user=user)
        second = services.email_otp_request(user=user)
        first.refresh_from_db()
        assert first.expires_at <= timezone.now() < second.expires_at
        code = mailed_code()
        assert second.code_hash == services.email_otp_hash(user_id=user.pk, code=code)
        for row in EmailOTP.objects.values():
            assert all(code not in str(value) for value in row.values())

    def test_wrong_tries_are_committed_even_though_the_call_fails(self):
        user = WorkerUserFactory()
        services.email_otp_request(user=user)
        wrong = wrong_for(mailed_code())
        for n in range(1, 8):
            with pytest.raises(exceptions.ValidationError):
                services.email_otp_verify(user=user, code=wrong)
            # Stops at the maximum (the database also refuses more: otp_attempts_max).
            assert EmailOTP.objects.get(user=user).attempts == min(n, EmailOTP.MAX_ATTEMPTS)

    def test_right_code_after_lock_fails(self):
        user = WorkerUserFactory()
        services.email_otp_request(user=user)
        code = mailed_code()
        EmailOTP.objects.filter(user=user).update(attempts=EmailOTP.MAX_ATTEMPTS)
        with pytest.raises(exceptions.ValidationError) as info:
            services.email_otp_verify(user=user, code=code)
        assert "locked" in str(info.value.detail["code"][0])
        user.refresh_from_db()
        assert not user.is_email_verified

    def test_fourth_wrong_try_then_right_code_succeeds(self):
        user = WorkerUserFactory()
        services.email_otp_request(user=user)
        code = mailed_code()
        for _ in range(EmailOTP.MAX_ATTEMPTS - 1):
            with pytest.raises(exceptions.ValidationError):
                services.email_otp_verify(user=user, code=wrong_for(code))
        services.email_otp_verify(user=user, code=code)
        user.refresh_from_db()
        assert user.is_email_verified

    def test_expired(self):
        user = WorkerUserFactory()
        otp = services.email_otp_request(user=user)
        EmailOTP.objects.filter(pk=otp.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        with pytest.raises(exceptions.ValidationError) as info:
            services.email_otp_verify(user=user, code=mailed_code())
        assert "expired" in str(info.value.detail["code"][0])


@pytest.mark.django_db
class TestUpdateMe:
    def test_only_editable_fields(self):
        user = WorkerUserFactory()
        for user_fields, profile_fields in [({"email": "x@example.com"}, {}), ({"is_staff": True}, {}),
                                            ({}, {"user_id": 3}), ({"role": "client"}, {})]:
            with pytest.raises(ValueError):
                services.user_update(user=user, user_fields=user_fields, profile_fields=profile_fields)
        user.refresh_from_db()
        assert user.role == Role.WORKER and not user.is_staff

    def test_updates_user_profile_and_skills(self):
        a, b = SkillFactory(name="Alpha"), SkillFactory(name="Beta")
        user = WorkerUserFactory(skills=[a])
        services.user_update(user=user, user_fields={"first_name": "New"},
                           profile_fields={"city": "Nice", "hourly_rate": Decimal("12.50")}, skills=["beta"])
        user.refresh_from_db()
        assert user.first_name == "New"
        assert user.profile.city == "Nice" and user.profile.hourly_rate == Decimal("12.50")
        assert list(user.profile.skills.all()) == [b]

    def test_skill_edits_bump_only_that_user(self, django_capture_on_commit_callbacks):
        a, b = SkillFactory(name="Alpha"), SkillFactory(name="Beta")
        user = WorkerUserFactory(skills=[a])
        other = WorkerUserFactory()
        scopes = [SKILLS, user_scope(user.pk), user_scope(other.pk)]
        before = get_versions(scopes)
        with django_capture_on_commit_callbacks(execute=True):
            services.user_update(user=user, user_fields={}, profile_fields={}, skills=["Alpha", "Beta"])
        after = get_versions(scopes)
        assert after[user_scope(user.pk)] > before[user_scope(user.pk)]
        assert after[SKILLS] == before[SKILLS]
        assert after[user_scope(other.pk)] == before[user_scope(other.pk)]
        assert set(user.profile.skills.all()) == {a, b}

    def test_unchanged_skills_bump_nothing(self, django_capture_on_commit_callbacks):
        a = SkillFactory(name="Alpha")
        user = WorkerUserFactory(skills=[a])
        with django_capture_on_commit_callbacks() as callbacks:
            services.user_update(user=user, user_fields={}, profile_fields={}, skills=["alpha"])
        assert callbacks == []

    def test_name_change_bumps_the_users_row_scope_only(self, django_capture_on_commit_callbacks):
        # Every list showing the user names user:<id> as a row scope (docs/cache.md),
        # so no list scope is bumped (tests/cache/test_row_scopes.py).
        user = WorkerUserFactory()
        before = get_versions([SKILLS, user_scope(user.pk)])
        with django_capture_on_commit_callbacks(execute=True):
            services.user_update(user=user, user_fields={"last_name": "Renamed"}, profile_fields={})
        after = get_versions([SKILLS, user_scope(user.pk)])
        assert after[SKILLS] == before[SKILLS]
        assert after[user_scope(user.pk)] > before[user_scope(user.pk)]

    def test_unknown_skills_change_nothing(self):
        a = SkillFactory(name="Alpha")
        user = WorkerUserFactory(skills=[a], profile_fields={"city": "Old"})
        with pytest.raises(exceptions.ValidationError) as info:
            services.user_update(user=user, user_fields={"first_name": "X"}, profile_fields={"city": "New"},
                               skills=["alpha", "nope"])
        assert "nope" in str(info.value.detail)
        user.refresh_from_db()
        assert user.first_name != "X" and user.profile.city == "Old"

    def test_creates_a_missing_profile(self):
        user = User.objects.create_user(email="bare@example.com", password="x")
        services.user_update(user=user, user_fields={}, profile_fields={"bio": "hello"})
        assert Profile.objects.get(user=user).bio == "hello"


@pytest.mark.django_db
class TestResolveSkills:
    def test_by_name_slug_and_slugified_name_in_order(self):
        a = SkillFactory(name="Heavy Lifting", slug="heavy-lifting")
        b = SkillFactory(name="C++", slug="cpp")
        assert services.skills_resolve(["cpp", "HEAVY LIFTING", "heavy-lifting", "C++"]) == [b, a]

    def test_unknown_are_listed(self):
        SkillFactory(name="Known")
        with pytest.raises(services.UnknownSkills) as info:
            services.skills_resolve(["known", "x", "y"])
        assert info.value.unknown == ["x", "y"]

    def test_one_query(self, django_assert_num_queries):
        for n in range(10):
            SkillFactory(name=f"S{n}")
        with django_assert_num_queries(1):
            assert len(services.skills_resolve([f"s{n}" for n in range(10)])) == 10


# --- PostgreSQL: real concurrency -------------------------------------------------

def run_in_threads(count: int, fn):
    """``fn(i)`` in ``count`` threads released together; results or exceptions."""
    return run_together(*[lambda i=i: fn(i) for i in range(count)], return_exceptions=True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_tries_are_all_counted_and_capped():
    user = WorkerUserFactory()
    services.email_otp_request(user=user)
    wrong = wrong_for(mailed_code())
    results = run_in_threads(8, lambda i: services.email_otp_verify(user=User.objects.get(pk=user.pk), code=wrong))
    assert all(isinstance(r, exceptions.ValidationError) for r in results)
    assert EmailOTP.objects.get(user=user).attempts == EmailOTP.MAX_ATTEMPTS
    messages = [str(r.detail["code"][0]) for r in results]
    assert sum(m.startswith("Too many") for m in messages) == 3  # refused without a check (the 5 wrong ones counted)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_right_code_succeeds_once():
    user = WorkerUserFactory()
    services.email_otp_request(user=user)
    code = mailed_code()
    results = run_in_threads(4, lambda i: services.email_otp_verify(user=User.objects.get(pk=user.pk), code=code))
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, exceptions.ValidationError) for r in results) == 3
    assert User.objects.get(pk=user.pk).is_email_verified


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_address():
    results = run_in_threads(5, lambda i: register(email="Race@Example.com" if i % 2 else "race@example.COM"))
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 4
    assert User.objects.filter(email="race@example.com").count() == 1
    assert Profile.objects.count() == 1 and Token.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_of_one_profile_do_not_fail():
    skills = [SkillFactory(name=f"Skill {n}") for n in range(4)]
    user = UserFactory()
    results = run_in_threads(
        4,
        lambda i: services.user_update(user=user, user_fields={"first_name": f"N{i}"},
                                     profile_fields={"city": f"C{i}"}, skills=[skills[i].name, skills[(i + 1) % 4].name]),
    )
    assert results == [None] * 4
    user.refresh_from_db()
    i = int(user.first_name[1:])
    # The last writer's edit is there in full: no mix of two writers' skill sets.
    assert user.profile.city == f"C{i}"
    assert set(user.profile.skills.values_list("name", flat=True)) == {skills[i].name, skills[(i + 1) % 4].name}
