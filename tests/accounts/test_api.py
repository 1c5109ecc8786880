"""The accounts endpoints over HTTP (docs/API.md "Authentication", /users/, /skills/):
success paths, refusals, authorization, mass assignment and bad input."""
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import EmailOTP, Profile, Role, User
from tests.accounts.factories import SkillFactory, UserFactory, WorkerUserFactory
from tests.conftest import auth_client

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/login/"
LOGOUT = "/api/v1/auth/logout/"
OTP_REQUEST = "/api/v1/auth/otp/request/"
OTP_VERIFY = "/api/v1/auth/otp/verify/"
ME = "/api/v1/users/me/"
SKILLS = "/api/v1/skills/"
FACTORY_PASSWORD = "correct-horse-battery-9"
GOOD_PASSWORD = "Tangerine-Orbit-4711"

ME_KEYS = {
    "id", "email", "role", "first_name", "last_name", "phone", "is_email_verified",
    "date_joined", "profile", "rating_avg", "rating_count", "completed_jobs",
}
PUBLIC_KEYS = {"id", "first_name", "last_name", "role", "profile", "rating_avg", "rating_count", "completed_jobs"}
PROFILE_KEYS = {"bio", "city", "skills", "hourly_rate"}

pytestmark = pytest.mark.django_db


def user_url(user_id) -> str:
    return f"/api/v1/users/{user_id}/"


def register_body(**overrides):
    body = {
        "email": "new.person@example.com",
        "password": GOOD_PASSWORD,
        "role": "worker",
        "first_name": "Nora",
        "last_name": "Quist",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def error(response, status: int, code: str) -> dict:
    """Assert an enveloped error and return its body."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"] == code
    assert body["message"]
    assert "Traceback" not in response.content.decode()
    return body


def raw_post(client, url, payload: str, content_type="application/json"):
    return client.generic("POST", url, payload.encode("utf-8"), content_type=content_type)


def raw_patch(client, url, payload: str, content_type="application/json"):
    return client.generic("PATCH", url, payload.encode("utf-8"), content_type=content_type)


def sent_code() -> str:
    assert mail.outbox, "no e-mail was sent"
    found = re.findall(r"\b(\d{6})\b", mail.outbox[-1].body)
    assert len(found) == 1
    return found[0]


# --- register ---------------------------------------------------------------------

class TestRegister:
    def test_creates_user_profile_and_token(self, anon):
        response = anon.post(REGISTER, register_body(email="  New.Person@Example.COM "), format="json")
        assert response.status_code == 201
        body = response.json()
        assert body["success"] is True
        data = body["data"]
        assert set(data) == {"user", "token"}
        assert set(data["user"]) == ME_KEYS
        assert data["user"]["email"] == "new.person@example.com"
        assert data["user"]["role"] == "worker"
        assert data["user"]["is_email_verified"] is False
        assert data["user"]["profile"] == {"bio": "", "city": "", "skills": [], "hourly_rate": None}
        user = User.objects.get(email="new.person@example.com")
        assert user.check_password(GOOD_PASSWORD)
        assert user.password != GOOD_PASSWORD
        assert Profile.objects.filter(user=user).exists()
        assert Token.objects.get(user=user).key == data["token"]
        # The token works.
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {data['token']}")
        assert client.get(ME).json()["data"]["id"] == user.pk

    def test_client_role(self, anon):
        response = anon.post(REGISTER, register_body(role="client"), format="json")
        assert response.status_code == 201
        assert User.objects.get().role == Role.CLIENT

    @pytest.mark.parametrize("email", ["new.person@example.com", "NEW.PERSON@EXAMPLE.COM", " New.Person@example.com"])
    def test_duplicate_email_in_any_case_is_409(self, anon, email):
        UserFactory(email="new.person@example.com")
        response = anon.post(REGISTER, register_body(email=email), format="json")
        body = error(response, 409, "conflict")
        assert "already exists" in body["message"]
        assert User.objects.count() == 1

    def test_staff_flags_in_body_are_ignored(self, anon):
        response = anon.post(
            REGISTER,
            register_body(
                is_staff=True, is_superuser=True, is_email_verified=True, is_active=False,
                rating_count=5, rating_sum=25, completed_jobs=9, id=999,
            ),
            format="json",
        )
        assert response.status_code == 201
        user = User.objects.get()
        assert (user.is_staff, user.is_superuser, user.is_email_verified, user.is_active) == (False, False, False, True)
        assert (user.rating_count, user.rating_sum, user.completed_jobs) == (0, 0, 0)
        assert user.pk != 999

    @pytest.mark.parametrize("role", ["admin", "staff", "", "CLIENT", 5, None, ["worker"]])
    def test_role_must_be_client_or_worker(self, anon, role):
        body = error(anon.post(REGISTER, register_body(role=role), format="json"), 400, "validation_error")
        assert "role" in body["details"]
        assert not User.objects.exists()

    @pytest.mark.parametrize("field", ["email", "password", "role", "first_name", "last_name"])
    def test_missing_field(self, anon, field):
        response = anon.post(REGISTER, register_body(**{field: ...}), format="json")
        body = error(response, 400, "validation_error")
        assert field in body["details"]

    @pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com", "", "x" * 250 + "@ex.com"])
    def test_invalid_email(self, anon, email):
        body = error(anon.post(REGISTER, register_body(email=email), format="json"), 400, "validation_error")
        assert "email" in body["details"]

    @pytest.mark.parametrize(
        "password",
        [
            "Ab1!",  # too short
            "password",  # common
            "12345678901234",  # numeric
            "new.person@example.com",  # the same as the e-mail address
            "",
            "P" * 129,  # oversize
        ],
    )
    def test_weak_or_bad_password(self, anon, password):
        body = error(anon.post(REGISTER, register_body(password=password), format="json"), 400, "validation_error")
        assert "password" in body["details"]
        assert not User.objects.exists()

    @pytest.mark.parametrize("first, last", [("Zoë", "Ångström"), ("李", "雷"), ("Ольга", "Смирнова"), ("Seán", "O'Brien-Łukasz")])
    def test_unicode_names_are_accepted(self, anon, first, last):
        response = anon.post(REGISTER, register_body(first_name=first, last_name=last), format="json")
        assert response.status_code == 201
        assert response.json()["data"]["user"]["first_name"] == first
        user = User.objects.get()
        assert (user.first_name, user.last_name) == (first, last)

    @pytest.mark.parametrize(
        "overrides",
        [
            {"first_name": "x" * 151},
            {"last_name": "y" * 100_000},
            {"first_name": ""},
            {"first_name": "   "},
            {"first_name": "bad\x00name"},
            {"first_name": ["Nora"]},
            {"first_name": {"a": 1}},
            {"last_name": True},
            {"email": 12345},
            {"email": ["a@example.com"]},
            {"password": None},
        ],
    )
    def test_bad_values_are_400(self, anon, overrides):
        response = anon.post(REGISTER, register_body(**overrides), format="json")
        body = error(response, 400, "validation_error")
        assert set(overrides) & set(body["details"])
        assert not User.objects.exists()

    def test_body_over_the_upload_limit_is_413_not_500(self, anon, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
        payload = json.dumps(register_body(first_name="n" * 20_000))
        body = error(raw_post(anon, REGISTER, payload), 413, "validation_error")
        assert "too large" in body["message"]
        assert not User.objects.exists()

    def test_lone_surrogate_is_400(self, anon):
        payload = json.dumps(register_body()).replace('"Nora"', '"No\\ud800ra"')
        body = error(raw_post(anon, REGISTER, payload), 400, "validation_error")
        assert "first_name" in body["details"]

    @pytest.mark.parametrize("payload", ['{"email": "a@example.com",', "not json", "", "[1, 2", '{"email": }'])
    def test_malformed_json_is_400(self, anon, payload):
        error(raw_post(anon, REGISTER, payload), 400, "validation_error")

    @pytest.mark.parametrize("payload", ["[]", '"just a string"', "42", "null"])
    def test_non_object_json_is_400(self, anon, payload):
        error(raw_post(anon, REGISTER, payload), 400, "validation_error")

    def test_text_plain_is_415(self, anon):
        response = raw_post(anon, REGISTER, json.dumps(register_body()), content_type="text/plain")
        error(response, 415, "unsupported_media_type")
        assert not User.objects.exists()

    @pytest.mark.parametrize("fmt", ["multipart", None])
    def test_form_data_is_415(self, anon, fmt):
        if fmt:
            response = anon.post(REGISTER, register_body(), format=fmt)
        else:
            from urllib.parse import urlencode

            response = raw_post(anon, REGISTER, urlencode(register_body()), "application/x-www-form-urlencoded")
        error(response, 415, "unsupported_media_type")
        assert not User.objects.exists()

    def test_get_is_405(self, anon):
        error(anon.get(REGISTER), 405, "method_not_allowed")

    def test_a_stale_token_header_does_not_block_registration(self, anon):
        anon.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
        assert anon.post(REGISTER, register_body(), format="json").status_code == 201

    def test_throttled(self, anon, throttle_rate):
        throttle_rate("register", "2/hour")
        for n in range(2):
            assert anon.post(REGISTER, register_body(email=f"u{n}@example.com"), format="json").status_code == 201
        response = anon.post(REGISTER, register_body(email="u9@example.com"), format="json")
        error(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0
        assert not User.objects.filter(email="u9@example.com").exists()


# --- login / logout ---------------------------------------------------------------

class TestLogin:
    def test_returns_token_and_me(self, anon, worker_user):
        response = anon.post(LOGIN, {"email": worker_user.email, "password": FACTORY_PASSWORD}, format="json")
        assert response.status_code == 200
        data = response.json()["data"]
        assert set(data) == {"token", "user"}
        assert set(data["user"]) == ME_KEYS
        assert data["user"]["id"] == worker_user.pk
        assert Token.objects.get(user=worker_user).key == data["token"]
        worker_user.refresh_from_db()
        assert worker_user.last_login is not None

    def test_same_token_on_second_login(self, anon, worker_user):
        first = anon.post(LOGIN, {"email": worker_user.email, "password": FACTORY_PASSWORD}, format="json")
        second = anon.post(LOGIN, {"email": worker_user.email, "password": FACTORY_PASSWORD}, format="json")
        assert first.json()["data"]["token"] == second.json()["data"]["token"]
        assert Token.objects.filter(user=worker_user).count() == 1

    def test_email_is_case_insensitive(self, anon, worker_user):
        email = "  " + worker_user.email.upper() + " "
        response = anon.post(LOGIN, {"email": email, "password": FACTORY_PASSWORD}, format="json")
        assert response.status_code == 200

    def test_wrong_password_and_unknown_email_look_the_same(self, anon, worker_user):
        wrong = error(anon.post(LOGIN, {"email": worker_user.email, "password": "nope-nope-1"}, format="json"),
                      400, "validation_error")
        unknown = error(anon.post(LOGIN, {"email": "nobody@example.com", "password": "nope-nope-1"}, format="json"),
                        400, "validation_error")
        assert wrong["message"] == unknown["message"]
        assert wrong["details"] == unknown["details"]
        assert "exist" not in wrong["message"].lower()
        assert not Token.objects.filter(user=worker_user).exists()

    def test_password_is_case_sensitive(self, anon, worker_user):
        response = anon.post(LOGIN, {"email": worker_user.email, "password": FACTORY_PASSWORD.upper()}, format="json")
        error(response, 400, "validation_error")

    def test_inactive_user_cannot_log_in(self, anon):
        user = UserFactory(is_active=False)
        body = error(anon.post(LOGIN, {"email": user.email, "password": FACTORY_PASSWORD}, format="json"),
                     400, "validation_error")
        unknown = error(anon.post(LOGIN, {"email": "nobody@example.com", "password": "x"}, format="json"),
                        400, "validation_error")
        assert body["message"] == unknown["message"]

    @pytest.mark.parametrize("body", [{}, {"email": "a@example.com"}, {"password": "x"}, {"email": "bad", "password": "x"},
                                      {"email": ["a@example.com"], "password": "x"}, {"email": "a@example.com", "password": "p" * 129}])
    def test_bad_bodies_are_400(self, anon, body):
        error(anon.post(LOGIN, body, format="json"), 400, "validation_error")

    def test_malformed_json_and_wrong_content_type(self, anon, worker_user):
        error(raw_post(anon, LOGIN, '{"email": '), 400, "validation_error")
        payload = json.dumps({"email": worker_user.email, "password": FACTORY_PASSWORD})
        error(raw_post(anon, LOGIN, payload, "text/plain"), 415, "unsupported_media_type")

    def test_throttled_even_with_the_right_password(self, anon, worker_user, throttle_rate):
        throttle_rate("login", "3/min")
        for _ in range(3):
            error(anon.post(LOGIN, {"email": worker_user.email, "password": "wrong-guess-1"}, format="json"),
                  400, "validation_error")
        response = anon.post(LOGIN, {"email": worker_user.email, "password": FACTORY_PASSWORD}, format="json")
        body = error(response, 429, "throttled")
        assert body["correlation_id"] == response["X-Request-ID"]
        assert int(response["Retry-After"]) > 0

    def test_a_forged_forwarded_for_does_not_escape_the_throttle(self, anon, worker_user, throttle_rate):
        throttle_rate("login", "2/min")
        statuses = [
            anon.post(LOGIN, {"email": worker_user.email, "password": "guess-1"}, format="json",
                      HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
            for n in range(3)
        ]
        assert statuses == [400, 400, 429]

    def test_a_stale_token_header_does_not_block_login(self, anon, worker_user):
        anon.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")
        response = anon.post(LOGIN, {"email": worker_user.email, "password": FACTORY_PASSWORD}, format="json")
        assert response.status_code == 200


class TestLogout:
    def test_anonymous_is_401(self, anon):
        error(anon.post(LOGOUT), 401, "not_authenticated")

    def test_revokes_the_token(self, worker_user):
        client = auth_client(worker_user)
        response = client.post(LOGOUT)
        assert response.status_code == 204
        assert response.content == b""
        assert not Token.objects.filter(user=worker_user).exists()
        error(client.get(ME), 401, "not_authenticated")
        error(client.post(LOGOUT), 401, "not_authenticated")

    def test_login_after_logout_gives_a_new_token(self, anon, worker_user):
        old = auth_client(worker_user)
        old_key = Token.objects.get(user=worker_user).key
        assert old.post(LOGOUT).status_code == 204
        response = anon.post(LOGIN, {"email": worker_user.email, "password": FACTORY_PASSWORD}, format="json")
        assert response.json()["data"]["token"] != old_key


# --- e-mail codes -----------------------------------------------------------------

class TestOTP:
    def test_anonymous_is_401(self, anon):
        error(anon.post(OTP_REQUEST), 401, "not_authenticated")
        error(anon.post(OTP_VERIFY, {"code": "123456"}, format="json"), 401, "not_authenticated")

    def test_request_mails_a_code_and_stores_only_its_hash(self, as_worker, worker_user):
        before = timezone.now()
        response = as_worker.post(OTP_REQUEST)
        assert response.status_code == 202
        assert response.json()["message"]
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == [worker_user.email]
        code = sent_code()
        otp = EmailOTP.objects.get(user=worker_user)
        assert otp.attempts == 0 and otp.used_at is None
        stored = [str(value) for value in EmailOTP.objects.values_list().get(pk=otp.pk)]
        assert all(code not in value for value in stored)
        assert len(otp.code_hash) == 64
        lifetime = (otp.expires_at - before).total_seconds()
        assert EmailOTP.LIFETIME_SECONDS - 5 <= lifetime <= EmailOTP.LIFETIME_SECONDS + 5

    def test_right_code_verifies_the_email(self, as_worker, worker_user):
        as_worker.post(OTP_REQUEST)
        response = as_worker.post(OTP_VERIFY, {"code": sent_code()}, format="json")
        assert response.status_code == 200
        assert response.json()["data"]["is_email_verified"] is True
        worker_user.refresh_from_db()
        assert worker_user.is_email_verified is True
        assert EmailOTP.objects.get(user=worker_user).used_at is not None

    def test_a_code_works_once(self, as_worker):
        as_worker.post(OTP_REQUEST)
        code = sent_code()
        assert as_worker.post(OTP_VERIFY, {"code": code}, format="json").status_code == 200
        error(as_worker.post(OTP_VERIFY, {"code": code}, format="json"), 400, "validation_error")

    def test_a_new_request_retires_the_earlier_code(self, as_worker, worker_user):
        as_worker.post(OTP_REQUEST)
        first = sent_code()
        as_worker.post(OTP_REQUEST)
        second = sent_code()
        if first != second:  # one chance in a million that they are the same
            error(as_worker.post(OTP_VERIFY, {"code": first}, format="json"), 400, "validation_error")
        assert as_worker.post(OTP_VERIFY, {"code": second}, format="json").status_code == 200
        older = EmailOTP.objects.filter(user=worker_user).order_by("created_at", "id").first()
        assert older.expires_at <= timezone.now()

    def test_wrong_code_is_400_and_counted_in_the_database(self, as_worker, worker_user):
        as_worker.post(OTP_REQUEST)
        code = sent_code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        body = error(as_worker.post(OTP_VERIFY, {"code": wrong}, format="json"), 400, "validation_error")
        assert "4 tries left" in body["message"]
        assert "code" in body["details"]
        assert EmailOTP.objects.get(user=worker_user).attempts == 1
        worker_user.refresh_from_db()
        assert worker_user.is_email_verified is False

    def test_five_wrong_tries_lock_the_code(self, as_worker, worker_user):
        as_worker.post(OTP_REQUEST)
        code = sent_code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for n in range(1, 6):
            error(as_worker.post(OTP_VERIFY, {"code": wrong}, format="json"), 400, "validation_error")
            assert EmailOTP.objects.get(user=worker_user).attempts == n
        body = error(as_worker.post(OTP_VERIFY, {"code": code}, format="json"), 400, "validation_error")
        assert "locked" in body["message"]
        assert EmailOTP.objects.get(user=worker_user).attempts == 5
        worker_user.refresh_from_db()
        assert worker_user.is_email_verified is False
        # A new code does not buy new tries (issue 10): it is refused too, right
        # or wrong, until an hour has passed since the wrong tries' code was made.
        assert as_worker.post(OTP_REQUEST).status_code == 202
        fresh = sent_code()
        body = error(as_worker.post(OTP_VERIFY, {"code": fresh}, format="json"), 400, "validation_error")
        assert "locked" in body["message"]
        EmailOTP.objects.filter(user=worker_user, attempts=5).update(created_at=timezone.now() - timedelta(hours=1))
        assert as_worker.post(OTP_VERIFY, {"code": fresh}, format="json").status_code == 200

    def test_new_codes_do_not_reset_the_budget_of_wrong_tries(self, as_worker, worker_user):
        """5 wrong tries per hour in all, however many codes are requested."""
        wrong_answers = 0
        for _ in range(4):
            assert as_worker.post(OTP_REQUEST).status_code == 202
            code = sent_code()
            for _ in range(3):
                wrong = f"{(int(code) + 1) % 1_000_000:06d}"
                body = error(as_worker.post(OTP_VERIFY, {"code": wrong}, format="json"), 400, "validation_error")
                wrong_answers += "Wrong code" in body["message"]
        assert wrong_answers == EmailOTP.MAX_ATTEMPTS
        assert sum(o.attempts for o in EmailOTP.objects.filter(user=worker_user)) == EmailOTP.MAX_ATTEMPTS

    def test_expired_code_is_400(self, as_worker, worker_user):
        as_worker.post(OTP_REQUEST)
        code = sent_code()
        EmailOTP.objects.filter(user=worker_user).update(expires_at=timezone.now() - timedelta(seconds=1))
        body = error(as_worker.post(OTP_VERIFY, {"code": code}, format="json"), 400, "validation_error")
        assert "expired" in body["message"]
        assert EmailOTP.objects.get(user=worker_user).attempts == 0
        worker_user.refresh_from_db()
        assert worker_user.is_email_verified is False

    def test_code_still_valid_just_before_expiry(self, as_worker, worker_user):
        as_worker.post(OTP_REQUEST)
        EmailOTP.objects.filter(user=worker_user).update(expires_at=timezone.now() + timedelta(seconds=30))
        assert as_worker.post(OTP_VERIFY, {"code": sent_code()}, format="json").status_code == 200

    def test_verify_without_a_code_requested(self, as_worker):
        body = error(as_worker.post(OTP_VERIFY, {"code": "123456"}, format="json"), 400, "validation_error")
        assert "Request a new one" in body["message"]

    def test_another_users_code_does_not_work(self, as_worker, client_user):
        other = auth_client(client_user)
        other.post(OTP_REQUEST)
        code = sent_code()
        as_worker.post(OTP_REQUEST)
        mine = sent_code()
        if code != mine:
            error(as_worker.post(OTP_VERIFY, {"code": code}, format="json"), 400, "validation_error")

    @pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 456", "", None, ["123456"], "١٢٣٤٥٦"])
    def test_malformed_codes_are_400_and_not_counted(self, as_worker, worker_user, code):
        as_worker.post(OTP_REQUEST)
        body = error(as_worker.post(OTP_VERIFY, {"code": code}, format="json"), 400, "validation_error")
        assert "code" in body["details"]
        assert EmailOTP.objects.get(user=worker_user).attempts == 0

    def test_missing_code_and_wrong_content_type(self, as_worker):
        error(as_worker.post(OTP_VERIFY, {}, format="json"), 400, "validation_error")
        error(raw_post(as_worker, OTP_VERIFY, "123456", "text/plain"), 415, "unsupported_media_type")

    def test_request_is_throttled_per_user(self, as_worker, as_client, throttle_rate):
        throttle_rate("otp", "2/min")
        assert as_worker.post(OTP_REQUEST).status_code == 202
        assert as_worker.post(OTP_REQUEST).status_code == 202
        error(as_worker.post(OTP_REQUEST), 429, "throttled")
        assert len(mail.outbox) == 2
        assert as_client.post(OTP_REQUEST).status_code == 202  # another user has their own budget

    def test_verify_is_throttled(self, as_worker, throttle_rate):
        throttle_rate("otp_verify", "2/min")
        as_worker.post(OTP_REQUEST)
        code = sent_code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        error(as_worker.post(OTP_VERIFY, {"code": wrong}, format="json"), 400, "validation_error")
        error(as_worker.post(OTP_VERIFY, {"code": wrong}, format="json"), 400, "validation_error")
        error(as_worker.post(OTP_VERIFY, {"code": code}, format="json"), 429, "throttled")

    def test_default_rates_let_the_lock_answer_before_the_throttle(self, as_worker):
        """With the configured rates, a request plus 5 wrong tries plus the right
        code all reach the view: the client sees the lock (400), not a 429."""
        as_worker.post(OTP_REQUEST)
        code = sent_code()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        statuses = [as_worker.post(OTP_VERIFY, {"code": wrong}, format="json").status_code for _ in range(5)]
        statuses.append(as_worker.post(OTP_VERIFY, {"code": code}, format="json").status_code)
        assert statuses == [400] * 6

    def test_mail_failure_is_503_not_500(self, as_worker, monkeypatch):
        def broken(*args, **kwargs):
            raise OSError("smtp down")

        monkeypatch.setattr("accounts.services.send_mail", broken)
        error(as_worker.post(OTP_REQUEST), 503, "service_unavailable")


# --- /users/me/ -------------------------------------------------------------------

class TestMe:
    def test_anonymous_is_401(self, anon):
        error(anon.get(ME), 401, "not_authenticated")
        error(anon.patch(ME, {"first_name": "X"}, format="json"), 401, "not_authenticated")

    def test_deactivated_user_with_a_token_is_401(self, as_worker, worker_user):
        assert as_worker.get(ME).status_code == 200
        User.objects.filter(pk=worker_user.pk).update(is_active=False)
        error(as_worker.get(ME), 401, "not_authenticated")
        error(as_worker.patch(ME, {"first_name": "X"}, format="json"), 401, "not_authenticated")

    def test_bad_token_is_401(self, anon):
        anon.credentials(HTTP_AUTHORIZATION="Token nope")
        error(anon.get(ME), 401, "not_authenticated")

    def test_shape(self):
        python, django = SkillFactory(name="Python"), SkillFactory(name="Django")
        user = WorkerUserFactory(
            phone="+49 30 123",
            rating_sum=9,
            rating_count=2,
            completed_jobs=3,
            skills=[python, django],
            profile_fields={"bio": "Hi", "city": "Berlin", "hourly_rate": Decimal("25.50")},
        )
        response = auth_client(user).get(ME)
        assert response.status_code == 200
        data = response.json()["data"]
        assert set(data) == ME_KEYS
        assert data["email"] == user.email
        assert data["phone"] == "+49 30 123"
        assert data["role"] == "worker"
        assert data["rating_avg"] == "4.50"
        assert (data["rating_count"], data["completed_jobs"]) == (2, 3)
        assert data["profile"] == {"bio": "Hi", "city": "Berlin", "skills": ["Django", "Python"], "hourly_rate": "25.50"}

    def test_user_without_a_profile_gets_an_empty_one(self):
        user = User.objects.create_user(email="admin@example.com", password="x")
        client = auth_client(user)
        data = client.get(ME).json()["data"]
        assert data["profile"] == {"bio": "", "city": "", "skills": [], "hourly_rate": None}
        response = client.patch(ME, {"profile": {"city": "Oslo"}}, format="json")
        assert response.status_code == 200
        assert response.json()["data"]["profile"]["city"] == "Oslo"
        assert Profile.objects.get(user=user).city == "Oslo"

    def test_patch_updates_and_returns_fresh_me(self, as_worker, worker_user):
        SkillFactory(name="Welding", slug="welding")
        SkillFactory(name="Forklift driving", slug="forklift-driving")
        response = as_worker.patch(
            ME,
            {
                "first_name": "Zoë",
                "last_name": "Łukasiewicz",
                "phone": "+44 (20) 7946-0958",
                "profile": {"bio": "Ten years on sites.", "city": "Kraków", "hourly_rate": "31.25",
                            "skills": ["welding", "Forklift driving"]},
            },
            format="json",
        )
        assert response.status_code == 200
        data = response.json()["data"]
        assert set(data) == ME_KEYS
        assert (data["first_name"], data["last_name"], data["phone"]) == ("Zoë", "Łukasiewicz", "+44 (20) 7946-0958")
        assert data["profile"] == {"bio": "Ten years on sites.", "city": "Kraków",
                                   "skills": ["Forklift driving", "Welding"], "hourly_rate": "31.25"}
        worker_user.refresh_from_db()
        assert worker_user.first_name == "Zoë"
        assert worker_user.profile.city == "Kraków"
        assert worker_user.profile.hourly_rate == Decimal("31.25")
        assert sorted(worker_user.profile.skills.values_list("slug", flat=True)) == ["forklift-driving", "welding"]
        # And a later GET shows it.
        assert as_worker.get(ME).json()["data"]["profile"]["city"] == "Kraków"

    def test_partial_patch_keeps_other_fields(self, as_worker, worker_user):
        skill = SkillFactory(name="Cooking")
        worker_user.profile.skills.add(skill)
        as_worker.patch(ME, {"profile": {"bio": "first"}, "phone": "123"}, format="json")
        response = as_worker.patch(ME, {"profile": {"city": "Rome"}}, format="json")
        data = response.json()["data"]
        assert data["profile"] == {"bio": "first", "city": "Rome", "skills": ["Cooking"], "hourly_rate": None}
        assert data["phone"] == "123"
        assert data["first_name"] == worker_user.first_name

    def test_skills_by_name_slug_or_any_case_without_duplicates(self, as_worker, worker_user):
        SkillFactory(name="First Aid", slug="first-aid")
        SkillFactory(name="Bartending", slug="bartending")
        response = as_worker.patch(
            ME, {"profile": {"skills": ["first-aid", "FIRST AID", "Bartending", "bartending"]}}, format="json"
        )
        assert response.status_code == 200
        assert response.json()["data"]["profile"]["skills"] == ["Bartending", "First Aid"]
        assert worker_user.profile.skills.count() == 2

    def test_empty_skill_list_clears_them(self, as_worker, worker_user):
        worker_user.profile.skills.add(SkillFactory())
        response = as_worker.patch(ME, {"profile": {"skills": []}}, format="json")
        assert response.json()["data"]["profile"]["skills"] == []
        assert worker_user.profile.skills.count() == 0

    def test_unknown_skill_is_400_and_nothing_changes(self, as_worker, worker_user):
        kept = SkillFactory(name="Painting")
        worker_user.profile.skills.add(kept)
        response = as_worker.patch(
            ME, {"first_name": "Changed", "profile": {"skills": ["Painting", "Juggling", "Knitting"]}}, format="json"
        )
        body = error(response, 400, "validation_error")
        assert "Juggling" in str(body["details"]["profile"]["skills"])
        assert "Knitting" in body["message"]
        worker_user.refresh_from_db()
        assert worker_user.first_name != "Changed"
        assert list(worker_user.profile.skills.all()) == [kept]

    def test_hourly_rate_can_be_cleared(self, as_worker, worker_user):
        as_worker.patch(ME, {"profile": {"hourly_rate": "10"}}, format="json")
        response = as_worker.patch(ME, {"profile": {"hourly_rate": None}}, format="json")
        assert response.json()["data"]["profile"]["hourly_rate"] is None
        worker_user.profile.refresh_from_db()
        assert worker_user.profile.hourly_rate is None

    def test_phone_can_be_cleared_and_zero_rate_is_fine(self, as_worker):
        as_worker.patch(ME, {"phone": "555 1234"}, format="json")
        data = as_worker.patch(ME, {"phone": "", "profile": {"hourly_rate": 0}}, format="json").json()["data"]
        assert data["phone"] == ""
        assert data["profile"]["hourly_rate"] == "0.00"

    def test_read_only_fields_never_change(self, as_worker, worker_user):
        before = User.objects.values().get(pk=worker_user.pk)
        response = as_worker.patch(
            ME,
            {
                "id": 424242, "email": "hijack@example.com", "role": "client", "is_staff": True,
                "is_superuser": True, "is_active": False, "is_email_verified": True, "rating_avg": "5.00",
                "rating_count": 100, "rating_sum": 500, "completed_jobs": 77, "date_joined": "2000-01-01T00:00:00Z",
                "password": "Another-Pass-123", "last_login": "2000-01-01T00:00:00Z",
                "profile": {"user": 1, "id": 99},
            },
            format="json",
        )
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["id"] == worker_user.pk and data["email"] == worker_user.email and data["role"] == "worker"
        assert data["is_email_verified"] is False and data["rating_count"] == 0
        after = User.objects.values().get(pk=worker_user.pk)
        assert after == before
        assert User.objects.count() == 1
        assert Profile.objects.get(user=worker_user).user_id == worker_user.pk

    def test_empty_patch_changes_nothing(self, as_worker, worker_user):
        before = User.objects.values().get(pk=worker_user.pk)
        response = as_worker.patch(ME, {}, format="json")
        assert response.status_code == 200
        assert User.objects.values().get(pk=worker_user.pk) == before

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"first_name": ""}, "first_name"),
            ({"first_name": "x" * 151}, "first_name"),
            ({"last_name": ["a"]}, "last_name"),
            ({"first_name": {"x": 1}}, "first_name"),
            ({"first_name": True}, "first_name"),
            ({"first_name": None}, "first_name"),
            ({"first_name": "a\x00b"}, "first_name"),
            ({"phone": "x" * 33}, "phone"),
            ({"phone": "call me maybe"}, "phone"),
            ({"phone": ["123"]}, "phone"),
            ({"profile": "Berlin"}, "profile"),
            ({"profile": ["bio"]}, "profile"),
            ({"profile": None}, "profile"),
            ({"profile": {"bio": "b" * 2001}}, "profile"),
            ({"profile": {"city": "c" * 101}}, "profile"),
            ({"profile": {"city": {"a": 1}}}, "profile"),
            ({"profile": {"skills": "python"}}, "profile"),
            ({"profile": {"skills": {"python": True}}}, "profile"),
            ({"profile": {"skills": [["python"]]}}, "profile"),
            ({"profile": {"skills": ["s" * 65]}}, "profile"),
            ({"profile": {"skills": [f"skill-{n}" for n in range(51)]}}, "profile"),
            ({"profile": {"skills": [""]}}, "profile"),
            ({"profile": {"hourly_rate": -1}}, "profile"),
            ({"profile": {"hourly_rate": "-0.01"}}, "profile"),
            ({"profile": {"hourly_rate": "abc"}}, "profile"),
            ({"profile": {"hourly_rate": "NaN"}}, "profile"),
            ({"profile": {"hourly_rate": "Infinity"}}, "profile"),
            ({"profile": {"hourly_rate": "1000000.00"}}, "profile"),
            ({"profile": {"hourly_rate": "1e30"}}, "profile"),
            ({"profile": {"hourly_rate": "10.123"}}, "profile"),
            ({"profile": {"hourly_rate": [10]}}, "profile"),
            ({"profile": {"hourly_rate": True}}, "profile"),
        ],
    )
    def test_bad_input_is_400(self, as_worker, worker_user, body, field):
        before = User.objects.values().get(pk=worker_user.pk)
        response = as_worker.patch(ME, body, format="json")
        result = error(response, 400, "validation_error")
        assert field in result["details"]
        assert User.objects.values().get(pk=worker_user.pk) == before

    def test_integer_skill_that_names_no_skill_is_400(self, as_worker):
        error(as_worker.patch(ME, {"profile": {"skills": [12345]}}, format="json"), 400, "validation_error")

    def test_body_over_the_upload_limit_is_413(self, as_worker, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
        payload = json.dumps({"profile": {"bio": "b" * 20_000}})
        error(raw_patch(as_worker, ME, payload), 413, "validation_error")

    def test_lone_surrogate_is_400(self, as_worker):
        error(raw_patch(as_worker, ME, '{"first_name": "a\\udc00b"}'), 400, "validation_error")

    @pytest.mark.parametrize("first, last", [("Zoë", "Ångström"), ("李", "雷"), ("Ольга", "Смирнова"), ("Mary-Jane", "D'Arcy")])
    def test_unicode_names_are_accepted(self, as_worker, worker_user, first, last):
        response = as_worker.patch(ME, {"first_name": first, "last_name": last}, format="json")
        assert response.status_code == 200
        worker_user.refresh_from_db()
        assert (worker_user.first_name, worker_user.last_name) == (first, last)

    @pytest.mark.parametrize("payload", ['{"first_name": ', "nope", '{"profile": {"city": "x"}'])
    def test_malformed_json_is_400(self, as_worker, payload):
        error(raw_patch(as_worker, ME, payload), 400, "validation_error")

    @pytest.mark.parametrize("payload", ["[]", '"x"', "3"])
    def test_non_object_json_is_400(self, as_worker, payload):
        error(raw_patch(as_worker, ME, payload), 400, "validation_error")

    def test_wrong_content_types_are_415(self, as_worker, worker_user):
        error(raw_patch(as_worker, ME, '{"first_name": "X"}', "text/plain"), 415, "unsupported_media_type")
        error(raw_patch(as_worker, ME, "first_name=X", "application/x-www-form-urlencoded"), 415,
              "unsupported_media_type")
        error(as_worker.patch(ME, {"first_name": "X"}, format="multipart"), 415, "unsupported_media_type")
        worker_user.refresh_from_db()
        assert worker_user.first_name != "X"

    @pytest.mark.parametrize("method", ["put", "delete", "post"])
    def test_other_methods_are_405(self, as_worker, method):
        error(getattr(as_worker, method)(ME, {}, format="json"), 405, "method_not_allowed")


# --- /users/{id}/ -----------------------------------------------------------------

class TestPublicUser:
    def test_shape_without_private_fields(self, anon):
        skill = SkillFactory(name="Carpentry")
        user = WorkerUserFactory(
            phone="+1 555 0100", rating_sum=14, rating_count=3, completed_jobs=4, skills=[skill],
            profile_fields={"city": "Lyon", "bio": "Wood.", "hourly_rate": Decimal("40")},
        )
        response = anon.get(user_url(user.pk))
        assert response.status_code == 200
        data = response.json()["data"]
        assert set(data) == PUBLIC_KEYS
        assert set(data["profile"]) == PROFILE_KEYS
        assert "email" not in data and "phone" not in data
        raw = response.content.decode()
        assert user.email not in raw and "555 0100" not in raw
        assert data["rating_avg"] == "4.67"
        assert (data["rating_count"], data["completed_jobs"], data["role"]) == (3, 4, "worker")
        assert data["profile"] == {"bio": "Wood.", "city": "Lyon", "skills": ["Carpentry"], "hourly_rate": "40.00"}

    def test_no_rating_yet_is_null(self, anon, client_user):
        assert anon.get(user_url(client_user.pk)).json()["data"]["rating_avg"] is None

    def test_authenticated_callers_see_the_same_public_shape(self, as_client, worker_user):
        data = as_client.get(user_url(worker_user.pk)).json()["data"]
        assert set(data) == PUBLIC_KEYS

    def test_own_public_profile_has_no_private_fields_either(self, as_worker, worker_user):
        data = as_worker.get(user_url(worker_user.pk)).json()["data"]
        assert "email" not in data and "phone" not in data

    def test_unknown_is_404(self, anon):
        error(anon.get(user_url(987654)), 404, "not_found")

    def test_inactive_is_404(self, anon):
        user = UserFactory(is_active=False)
        error(anon.get(user_url(user.pk)), 404, "not_found")

    @pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "0x10"])
    def test_non_numeric_ids_are_404(self, anon, bad):
        error(anon.get(f"/api/v1/users/{bad}/"), 404, "not_found")

    def test_write_methods_are_405(self, as_worker, worker_user):
        error(as_worker.patch(user_url(worker_user.pk), {"first_name": "x"}, format="json"), 405, "method_not_allowed")
        error(as_worker.delete(user_url(worker_user.pk)), 405, "method_not_allowed")


# --- /skills/ ---------------------------------------------------------------------

class TestSkills:
    def test_paginated_list_by_name(self, anon):
        for name in ["Welding", "Baking", "Accounting"]:
            SkillFactory(name=name)
        response = anon.get(SKILLS)
        assert response.status_code == 200
        body = response.json()
        assert [s["name"] for s in body["data"]] == ["Accounting", "Baking", "Welding"]
        assert set(body["data"][0]) == {"id", "name", "slug"}
        assert body["data"][0]["slug"] == "accounting"
        assert body["pagination"] == {"page": 1, "per_page": 20, "total_items": 3, "total_pages": 1,
                                      "has_next": False, "has_prev": False}

    def test_pages(self, anon):
        for n in range(5):
            SkillFactory(name=f"Skill {n}")
        body = anon.get(SKILLS, {"per_page": 2, "page": 3}).json()
        assert [s["name"] for s in body["data"]] == ["Skill 4"]
        assert body["pagination"]["total_pages"] == 3 and body["pagination"]["has_prev"] is True
        error(anon.get(SKILLS, {"page": 4, "per_page": 2}), 404, "not_found")
        error(anon.get(SKILLS, {"per_page": "x"}), 400, "validation_error")
        assert anon.get(SKILLS, {"per_page": 1000}).json()["pagination"]["per_page"] == 100

    def test_authenticated_too(self, as_worker):
        SkillFactory()
        assert as_worker.get(SKILLS).status_code == 200

    def test_post_is_405(self, as_staff):
        error(as_staff.post(SKILLS, {"name": "x", "slug": "x"}, format="json"), 405, "method_not_allowed")
