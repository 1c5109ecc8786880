"""Logins that cannot be ground down (issue 10, class 6): a failed-login budget
per account on top of the per-address throttle, the admin login under the same
limits, limits that hold while the cache (Redis) fails, and a logout that ends
the session as well as the token."""
import pytest
from django.core.cache import caches
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.accounts.factories import StaffUserFactory, WorkerUserFactory
from tests.accounts.test_api import FACTORY_PASSWORD, LOGIN, LOGOUT, ME, OTP_REQUEST, OTP_VERIFY, error, sent_code
from tests.conftest import auth_client

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"


def _api_login(email, password, address):
    return APIClient().post(LOGIN, {"email": email, "password": password}, format="json", REMOTE_ADDR=address)


def _admin_login(client, email, password, address="10.9.0.1"):
    return client.post(ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"}, REMOTE_ADDR=address)


def test_failed_logins_are_limited_per_account_from_any_address(throttle_rate):
    throttle_rate("login_account", "3/hour")
    user = WorkerUserFactory()
    for n in range(3):
        error(_api_login(user.email, "wrong-guess", f"10.0.{n}.1"), 400, "validation_error")
    # From yet another address, even with the right password: the budget is spent.
    response = _api_login(user.email.upper(), FACTORY_PASSWORD, "10.0.99.1")
    error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # Other accounts are not affected; an unknown address has a budget of its own.
    other = WorkerUserFactory()
    assert _api_login(other.email, FACTORY_PASSWORD, "10.0.0.1").status_code == 200


def test_successful_logins_do_not_spend_the_budget(throttle_rate):
    throttle_rate("login_account", "2/hour")
    user = WorkerUserFactory()
    for n in range(5):
        assert _api_login(user.email, FACTORY_PASSWORD, f"10.1.{n}.1").status_code == 200


def test_admin_login_is_throttled_per_address_like_the_api(throttle_rate):
    throttle_rate("login", "3/min")
    staff = StaffUserFactory()
    client = Client()
    for _ in range(3):
        assert _admin_login(client, staff.email, "wrong-guess").status_code == 200  # the form again
    response = _admin_login(client, staff.email, FACTORY_PASSWORD)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    # the API login from that address is spent too (one bucket per address)
    error(_api_login(staff.email, FACTORY_PASSWORD, "10.9.0.1"), 429, "throttled")


def test_admin_and_api_failures_share_the_account_budget(throttle_rate):
    throttle_rate("login_account", "4/hour")
    staff = StaffUserFactory()
    for n in range(2):
        assert _admin_login(Client(), staff.email, "wrong", address=f"10.2.{n}.1").status_code == 200
    for n in range(2):
        error(_api_login(staff.email, "wrong", f"10.3.{n}.1"), 400, "validation_error")
    assert _admin_login(Client(), staff.email, FACTORY_PASSWORD, address="10.4.0.1").status_code == 429
    error(_api_login(staff.email, FACTORY_PASSWORD, "10.4.0.2"), 429, "throttled")


def test_admin_login_still_works(throttle_rate):
    staff = StaffUserFactory()
    client = Client()
    response = _admin_login(client, staff.email, FACTORY_PASSWORD)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.fixture
def cache_down(monkeypatch):
    """Every call on the shared cache fails, as with Redis down."""
    backend = caches["default"]

    def boom(*args, **kwargs):
        raise ConnectionError("cache down (test)")

    for name in ("get", "set", "add", "incr", "get_many", "set_many", "delete", "touch"):
        monkeypatch.setattr(backend, name, boom)


def test_login_limits_hold_while_the_cache_is_down(cache_down, throttle_rate):
    throttle_rate("login", "2/min")
    throttle_rate("login_account", "5/hour")
    user = WorkerUserFactory()
    statuses = [_api_login(user.email, "wrong", "10.5.0.1").status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    # and per account, from many addresses
    other = WorkerUserFactory()
    for n in range(5):
        error(_api_login(other.email, "wrong", f"10.6.{n}.1"), 400, "validation_error")
    error(_api_login(other.email, FACTORY_PASSWORD, "10.6.99.1"), 429, "throttled")


def test_otp_limits_hold_while_the_cache_is_down(cache_down, throttle_rate):
    throttle_rate("otp", "2/min")
    throttle_rate("otp_verify", "3/min")
    user = WorkerUserFactory()
    api = auth_client(user)
    assert [api.post(OTP_REQUEST).status_code for _ in range(3)] == [202, 202, 429]
    wrong = f"{(int(sent_code()) + 1) % 1_000_000:06d}"
    statuses = [api.post(OTP_VERIFY, {"code": wrong}, format="json").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]


def test_logout_ends_the_session_as_well_as_the_token():
    user = WorkerUserFactory()
    browser = APIClient()
    browser.force_login(user)  # a session, as the browsable API or the admin makes
    Token.objects.get_or_create(user=user)
    assert browser.get(ME).status_code == 200
    assert browser.post(LOGOUT).status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert browser.get(ME).status_code in (401, 403)
    assert browser.get("/admin/").status_code == 302  # to the login page


def test_logout_with_a_token_revokes_it():
    user = WorkerUserFactory()
    api = auth_client(user)
    assert api.post(LOGOUT).status_code == 204
    assert api.get(ME).status_code == 401
