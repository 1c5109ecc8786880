"""A client no one here wrote: openapi-python-client (pinned in requirements.txt)
generates a Python package from the schema a live server serves, and the whole
marketplace flow runs through its functions and models only (no raw JSON): both
roles register, the client posts a job, the worker applies, the client accepts,
starts and completes it, pays with an idempotency key (and replays it), confirms;
both review each other; the public profile and a filtered job list show the
result. One documented error of each kind (409, 404, 400) parses into the
generated Error model.

Time is moved with time-machine, never slept: the job is posted to start in the
future, started once its start has come and completed after its end.
"""
import datetime as dt
import importlib
import importlib.util
import pkgutil
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine

from tests.jobs.factories import CategoryFactory

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "shiftboard_generated_client"
PASSWORD = "Sturdy-pass-4821"


@pytest.fixture(scope="module")
def gen(short_lived_connections, django_db_setup, live_server, tmp_path_factory, django_db_blocker):
    """The generated package, imported from a temporary directory. The live server
    touches the database connection on every request (Django closes stale
    connections at request start), so the schema fetch runs with database access
    allowed: this module-scoped fixture runs before any test's own db fixture."""
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.yml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    with django_db_blocker.unblock():
        result = _generate(out, config, live_server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(out))
    try:
        package = importlib.import_module(PACKAGE)
        modules = {name: importlib.import_module(f"{PACKAGE}.{name}") for name in ("client", "models", "types")}
        api = importlib.import_module(f"{PACKAGE}.api")
        yield type("Generated", (), {"package": package, "api": api, **modules, "url": live_server.url})
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _generate(out, config, url):
    return subprocess.run(
        [
            str(GENERATOR), "generate", "--url", f"{url}/api/schema/?format=json",
            "--meta", "none", "--config", str(config), "--output-path", str(out / PACKAGE), "--fail-on-warning",
        ],
        capture_output=True, text=True, timeout=300,
    )


def op(gen, name):
    """A generated endpoint module by operation id, e.g. op(gen, "jobs_create")
    (the generator puts it in the package of its tag: api/jobs/jobs_create.py)."""
    for tag in pkgutil.iter_modules(gen.api.__path__):
        if importlib.util.find_spec(f"{gen.api.__name__}.{tag.name}.{name}"):
            return importlib.import_module(f"{gen.api.__name__}.{tag.name}.{name}")
    raise LookupError(f"no generated operation {name}")


def call(gen, name, **kwargs):
    response = op(gen, name).sync_detailed(**kwargs)
    return response.status_code.value, response.parsed


def register(gen, anon, role):
    M = gen.models
    status, parsed = call(
        gen, "auth_register_create", client=anon,
        body=M.RegisterRequest(
            email=f"{role}-{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD,
            role=M.RegisterRoleEnum(role), first_name=role.title(), last_name="Generated",
        ),
    )
    assert status == 201 and isinstance(parsed, M.AuthResultEnvelope), parsed
    assert parsed.success is True and parsed.data.user.role == M.RoleEnum(role)
    return parsed.data.user, gen.client.AuthenticatedClient(base_url=gen.url, token=parsed.data.token, prefix="Token")


@pytest.mark.django_db(transaction=True)
def test_marketplace_flow_through_the_generated_client(gen):
    M = gen.models
    CategoryFactory(name="Catering", slug="catering")
    anon = gen.client.Client(base_url=gen.url)

    status, health = call(gen, "health_retrieve", client=anon)
    assert status == 200 and isinstance(health, M.HealthEnvelope) and health.data.database == "ok"

    boss, as_client = register(gen, anon, "client")
    worker, as_worker = register(gen, anon, "worker")

    # Login gives a token that works as well as the one from registering.
    status, login = call(gen, "auth_login_create", client=anon, body=M.LoginRequest(email=boss.email, password=PASSWORD))
    assert status == 200 and login.data.user.id == boss.id

    status, categories = call(gen, "categories_list", client=anon)
    assert isinstance(categories, M.PaginatedCategoryList) and categories.pagination.total_items == 1
    category = categories.data[0]

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start_at, end_at = now + dt.timedelta(hours=2), now + dt.timedelta(hours=4)  # 2 scheduled hours
    status, created = call(
        gen, "jobs_create", client=as_client,
        body=M.JobWriteRequest(
            title="Bar shift", description="Serve drinks.", category=category.slug, city="Lisbon",
            rate="25.00", currency="EUR", workers_needed=1, start_at=start_at, end_at=end_at,
        ),
    )
    assert status == 201 and isinstance(created, M.JobEnvelope), created
    job = created.data
    assert job.status == M.JobStatusEnum.OPEN and job.client.id == boss.id and job.start_at == start_at

    status, applied = call(
        gen, "jobs_apply_create", client=as_worker, id=job.id, body=M.ApplyInputRequest(cover_note="Experienced.")
    )
    assert status == 201 and isinstance(applied, M.ApplicationEnvelope)
    application = applied.data
    assert application.status == M.ApplicationStatusEnum.PENDING and application.worker.id == worker.id

    # 409: applying twice, parsed into the documented error model.
    status, error = call(gen, "jobs_apply_create", client=as_worker, id=job.id, body=M.ApplyInputRequest())
    assert status == 409 and isinstance(error, M.Error)
    assert error.success is False and error.error == M.ErrorCode.CONFLICT and error.message

    status, pending = call(gen, "jobs_applications_list", client=as_client, id=job.id, status=gen.models.JobsApplicationsListStatus.PENDING)
    assert status == 200 and [a.id for a in pending.data] == [application.id]

    status, accepted = call(gen, "applications_accept_create", client=as_client, id=application.id)
    assert status == 200 and accepted.data.status == M.ApplicationStatusEnum.ACCEPTED
    status, filled = call(gen, "jobs_retrieve", client=anon, id=job.id)
    assert filled.data.status == M.JobStatusEnum.FILLED

    with time_machine.travel(start_at + dt.timedelta(minutes=1), tick=True):
        status, started = call(gen, "jobs_start_create", client=as_client, id=job.id)
        assert status == 200, started
        assert started.data.status == M.JobStatusEnum.IN_PROGRESS

    with time_machine.travel(end_at + dt.timedelta(minutes=1), tick=True):
        status, completed = call(gen, "jobs_complete_create", client=as_client, id=job.id)
        assert status == 200, completed
        assert completed.data.status == M.JobStatusEnum.COMPLETED

        # Pay the shift's worth (rate x scheduled hours), with an idempotency key.
        key = f"pay-{uuid.uuid4().hex}"
        body = M.PaymentCreateRequest(job=job.id, recipient=worker.id, amount="50.00", currency="EUR")
        status, paid = call(gen, "payments_create", client=as_client, body=body, idempotency_key=key)
        assert status == 201 and isinstance(paid, M.PaymentEnvelope), paid
        payment = paid.data
        assert payment.status == M.PaymentStatusEnum.PENDING and Decimal(payment.amount) == Decimal("50.00")
        status, replay = call(gen, "payments_create", client=as_client, body=body, idempotency_key=key)
        assert status == 200 and replay.data.id == payment.id

        status, confirmed = call(gen, "payments_confirm_create", client=as_client, id=payment.id)
        assert status == 200 and confirmed.data.status == M.PaymentStatusEnum.SUCCEEDED
        status, seen = call(gen, "payments_retrieve", client=as_worker, id=payment.id)
        assert seen.data.recipient.id == worker.id and seen.data.status == M.PaymentStatusEnum.SUCCEEDED
        status, balance = call(gen, "users_me_balance_retrieve", client=as_worker)
        assert isinstance(balance, M.BalanceEnvelope) and Decimal(balance.data.received_total) == Decimal("50.00")

        # 400: a rating outside 1-5, with the field named in details.
        status, error = call(
            gen, "reviews_create", client=as_client,
            body=M.ReviewCreateRequest(job=job.id, reviewed=worker.id, rating=6),
        )
        assert status == 400 and isinstance(error, M.Error)
        assert error.error == M.ErrorCode.VALIDATION_ERROR and "rating" in error.details.additional_properties

        status, review = call(
            gen, "reviews_create", client=as_client,
            body=M.ReviewCreateRequest(job=job.id, reviewed=worker.id, rating=5, comment="Great work."),
        )
        assert status == 201 and isinstance(review, M.ReviewEnvelope) and review.data.reviewer.id == boss.id
        status, review = call(
            gen, "reviews_create", client=as_worker,
            body=M.ReviewCreateRequest(job=job.id, reviewed=boss.id, rating=4, comment="Fair client."),
        )
        assert status == 201 and review.data.reviewed.id == boss.id

    status, profile = call(gen, "users_retrieve", client=anon, id=worker.id)
    assert isinstance(profile, M.PublicUserEnvelope)
    assert profile.data.rating_count == 1 and Decimal(profile.data.rating_avg) == Decimal("5")
    assert profile.data.completed_jobs == 1
    status, received = call(gen, "users_reviews_list", client=anon, id=worker.id)
    assert [r.rating for r in received.data] == [5]

    status, listed = call(
        gen, "jobs_list", client=anon, client_query=boss.id, status=M.JobsListStatus.COMPLETED,
        ordering=[M.JobsListOrderingItem("-start_at")],
    )
    assert isinstance(listed, M.PaginatedJobList) and [j.id for j in listed.data] == [job.id]
    assert listed.pagination.total_items == 1 and listed.pagination.has_next is False

    # 404: a job that does not exist.
    status, error = call(gen, "jobs_retrieve", client=anon, id=job.id + 10_000)
    assert status == 404 and isinstance(error, M.Error) and error.error == M.ErrorCode.NOT_FOUND

    status, me = call(gen, "users_me_retrieve", client=as_worker)
    assert isinstance(me, M.MeEnvelope) and me.data.email == worker.email
    status, none = call(gen, "auth_logout_create", client=as_worker)
    assert status == 204 and none is None
    status, error = call(gen, "users_me_retrieve", client=as_worker)
    assert status == 401 and error.error == M.ErrorCode.NOT_AUTHENTICATED
