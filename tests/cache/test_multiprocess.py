"""Read-your-writes across processes, proven over HTTP against gunicorn.

Two gunicorn masters share the PostgreSQL test database and one Redis: A (1
worker) takes every write, B (2 workers; a new TCP connection lands on either)
takes every read. So a write and the reads after it always run in different
processes, and B's two workers also read each other's entries. Production
settings: DEBUG off, Redis cache, persistent DB connections.

For each write, every GET that shows the changed data is read
- before the write, until it is a cache HIT (proves the entry existed, so a fresh
  read afterwards proves invalidation, not a cold cache),
- after the write returned. When it shows the pre-write data, the same GET made
  unique by an extra query parameter (its own cache key: a MISS, built from the
  database at that moment) tells whether the write changed that data: then the
  read is *stale*. (A read showing new data is compared with such a fresh read
  too, one time in four: a difference also counts as stale.)
Only reads whose data the write did change count as write/read pairs.
"""
from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import Role, User
from jobs.models import Application, ApplicationStatus, Job, JobStatus, SavedJob
from jobs.services import EARLY_START_WINDOW
from payments.models import LIVE_STATUSES, Payment, PaymentStatus
from ratings.models import Review
from tests.cache.servers import Gunicorn, gunicorn_pair
from tests.cache.world import World

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

API = "/api/v1"
# MULTIPROCESS_MIN_PAIRS: fewer pairs where the proof runs again on other engines
# (the scale step of CI: a delayed read replica, Sentinel, Cluster).
MIN_PAIRS = int(os.environ.get("MULTIPROCESS_MIN_PAIRS", 1000))
# A bound, not a target: the loop stops at MIN_PAIRS (about 40 s on an idle
# 2-core machine); a heavily loaded machine may need longer.
TIME_BUDGET_SECONDS = 150
KINDS = (
    "job_create", "job_edit", "job_cancel", "apply", "accept", "reject", "withdraw", "save", "unsave",
    "name_edit", "profile_edit", "start", "complete", "payment_create", "payment_confirm",
    "payment_refund", "review_create",
)


@pytest.fixture
def servers(transactional_db):
    """Gunicorn A (writes, 1 worker) and B (reads, 3 workers), on this test run's own
    key prefix: the data the tests make here (factories, ``update()``) bumps the same
    counters the servers read -- and, with read replicas, records the WAL positions
    their builds need (docs/scaling.md), as every writer of a deployment does."""
    with gunicorn_pair(settings.CACHES["default"]["KEY_PREFIX"], read_workers=3) as pair:
        yield pair


def job_reads(job: Job) -> list[tuple[str, int | None]]:
    """Every GET that shows this job (or its applications)."""
    reads = [
        (f"{API}/jobs/{job.pk}/", None),
        (f"{API}/jobs/?client={job.client_id}&per_page=100", None),
        (f"{API}/jobs/{job.pk}/applications/?per_page=100", job.client_id),
        (f"{API}/applications/?per_page=100", job.client_id),
    ]
    for worker_id in Application.objects.filter(job=job).values_list("worker_id", flat=True):
        reads.append((f"{API}/applications/?per_page=100", worker_id))
    for user_id in SavedJob.objects.filter(job=job).values_list("user_id", flat=True):
        reads.append((f"{API}/users/me/saved-jobs/?per_page=100", user_id))
    for payer, recipient in Payment.objects.filter(job=job).values_list("payer_id", "recipient_id").distinct():
        reads += [(f"{API}/payments/?per_page=100", payer), (f"{API}/payments/?per_page=100", recipient)]
    if Review.objects.filter(job=job).exists():
        reads.append((f"{API}/reviews/?job={job.pk}", None))
    return reads


def user_reads(user: User) -> list[tuple[str, int | None]]:
    """Every GET that shows this user (own view, public profile, lists with their name)."""
    reads = [
        (f"{API}/users/me/", user.pk),
        (f"{API}/users/{user.pk}/", None),
        (f"{API}/applications/?per_page=100", user.pk),
        (f"{API}/payments/?per_page=100", user.pk),
        (f"{API}/users/{user.pk}/reviews/", None),
        (f"{API}/users/{user.pk}/reviews-given/", None),
    ]
    if user.role == Role.CLIENT:
        reads.append((f"{API}/jobs/?client={user.pk}&per_page=100", None))
        job = Job.objects.filter(client=user).order_by("?").first()
        if job:
            reads.append((f"{API}/jobs/{job.pk}/", None))
        # Saved-job lists show the client of each saved job.
        for saver in SavedJob.objects.filter(job__client=user).values_list("user_id", flat=True).distinct()[:2]:
            reads.append((f"{API}/users/me/saved-jobs/?per_page=100", saver))
    else:
        application = Application.objects.filter(worker=user).select_related("job").order_by("?").first()
        if application:
            reads.append((f"{API}/jobs/{application.job_id}/applications/?per_page=100", application.job.client_id))
    return reads


def payment_reads(payer_id: int, recipient_id: int, payment_id: int | None, staff_id: int):
    reads = [
        (f"{API}/payments/?per_page=100", payer_id),
        (f"{API}/payments/?per_page=100", recipient_id),
        (f"{API}/users/me/balance/", payer_id),
        (f"{API}/users/me/balance/", recipient_id),
        (f"{API}/users/{payer_id}/payments/?per_page=100", payer_id),
        (f"{API}/users/{recipient_id}/payments/?per_page=100", staff_id),
    ]
    if payment_id:
        reads += [(f"{API}/payments/{payment_id}/", payer_id), (f"{API}/payments/{payment_id}/", recipient_id)]
    return reads


class Run:
    def __init__(self, world: World, a: Gunicorn, b: Gunicorn, rng: random.Random):
        self.world, self.a, self.b, self.rng = world, a, b, rng
        self.kinds = Counter()
        self.pairs = 0
        self.stale: list[str] = []
        self.pre_hits = 0
        self.pre_total = 0
        self.post_miss = 0
        self.read_ids: list[str] = []
        self.write_ids: list[str] = []
        self.pool = ThreadPoolExecutor(max_workers=4)

    # -- the protocol: warm, write, read, compare ---------------------------------

    def _read(self, path, user_id):
        tok = self.world.tok(user_id) if user_id else None
        response = self.b.api.get(path, token=tok)
        self.read_ids.append(response.request_id)
        assert response.status == 200, (path, response.status, response.body)
        return response

    def _fresh(self, path, user_id):
        sep = "&" if "?" in path else "?"
        response = self._read(f"{path}{sep}_fresh={uuid.uuid4().hex}", user_id)
        assert response.x_cache == "MISS", path  # built now (RESPONSE_CACHE_KEY_EXTRA_PARAMS keeps _fresh)
        return response

    def _warm(self, read):
        path, user_id = read
        response = self._read(path, user_id)
        if response.x_cache != "HIT":
            response = self._read(path, user_id)
        return response

    def _check(self, read, old):
        """The read after the write. It shows the old state (``old``) when it is
        stale -- or when the write did not change what it shows: only then is a
        fresh read needed to tell which. A read showing a new state is checked
        against a fresh read too, one time in four (it must be the current state)."""
        path, user_id = read
        post = self._read(path, user_id)
        if post.data == old or self.rng.random() < 0.25:
            return post, self._fresh(path, user_id)
        return post, None

    def step(self, kind: str, reads, write) -> None:
        reads = list(dict.fromkeys(reads))
        self.rng.shuffle(reads)
        # Reads run concurrently (they land on B's workers in any order); each
        # phase ends before the next starts: all warm, then the write, then reads.
        before = {}
        for read, response in zip(reads, self.pool.map(self._warm, reads)):
            self.pre_total += 1
            self.pre_hits += response.x_cache == "HIT"
            before[read] = response.data
        response = write()
        self.write_ids.append(response.request_id)
        self.kinds[kind] += 1
        after_reads = list(reads)
        self.rng.shuffle(after_reads)
        checked = self.pool.map(lambda read: self._check(read, before[read]), after_reads)
        for (path, user_id), (post, fresh) in zip(after_reads, checked):
            old = before[(path, user_id)]
            if fresh is not None and post.data != fresh.data:
                self.stale.append(f"{kind}: GET {path} as {user_id} ({post.x_cache})")
            if fresh is None or fresh.data != old:  # the write changed what this GET shows
                self.pairs += 1
                self.post_miss += post.x_cache == "MISS"

    def write(self, method, path, user_id, body=None, expect=(200, 201, 204), headers=None):
        def do():
            response = self.a.api.request(method, path, token=self.world.tok(user_id), body=body, headers=headers)
            assert response.status in expect, (method, path, response.status, response.body)
            return response

        return do

    # -- the kinds of change the API allows ------------------------------------------

    def pick(self, queryset):
        ids = list(queryset.values_list("pk", flat=True)[:200])
        return queryset.model.objects.get(pk=self.rng.choice(ids)) if ids else None

    def job_create(self):
        client = self.rng.choice(self.world.clients)
        start = timezone.now() + timedelta(days=self.rng.randint(1, 20))
        body = {
            "title": f"Shift {uuid.uuid4().hex[:8]}", "description": "Created over HTTP.",
            "category": self.world.category.pk, "skills": [self.world.skills[0].name], "city": "Berlin",
            "rate": "21.50", "currency": "EUR", "workers_needed": self.rng.choice([1, 2]),
            "start_at": start.isoformat(), "end_at": (start + timedelta(hours=6)).isoformat(),
        }
        reads = [(f"{API}/jobs/?per_page=100", None), (f"{API}/jobs/?client={client.pk}&per_page=100", None)]
        return reads, self.write("POST", f"{API}/jobs/", client.pk, body, expect=(201,))

    def job_edit(self):
        job = self.pick(Job.objects.filter(status=JobStatus.OPEN))
        if not job:
            return None
        body = {"title": f"Edited {uuid.uuid4().hex[:8]}"}
        if not job.accepted_count:  # the rate is frozen once a worker is accepted
            body["rate"] = f"{self.rng.randint(15, 60)}.00"
        return job_reads(job), self.write("PATCH", f"{API}/jobs/{job.pk}/", job.client_id, body, expect=(200,))

    def job_cancel(self):
        job = self.pick(Job.objects.filter(status=JobStatus.OPEN, applications__isnull=False).distinct())
        if not job or Job.objects.filter(status=JobStatus.OPEN).count() < 6:
            return None
        return job_reads(job), self.write("DELETE", f"{API}/jobs/{job.pk}/", job.client_id, expect=(200, 204))

    def apply(self):
        job = self.pick(Job.objects.filter(status=JobStatus.OPEN))
        if not job:
            return None
        applied = set(Application.objects.filter(job=job).values_list("worker_id", flat=True))
        free = [w for w in self.world.workers if w.pk not in applied]
        if not free:
            return None
        worker = self.rng.choice(free)
        reads = job_reads(job) + [(f"{API}/applications/?per_page=100", worker.pk)]
        body = {"cover_note": f"note {uuid.uuid4().hex[:6]}"}
        return reads, self.write("POST", f"{API}/jobs/{job.pk}/apply/", worker.pk, body, expect=(201,))

    def _pending(self):
        return self.pick(Application.objects.filter(status=ApplicationStatus.PENDING, job__status=JobStatus.OPEN))

    def _act_on_pending(self, action: str, *, by_worker: bool = False):
        """POST ``action`` on a pending application of an open job, as its job's client
        (or, ``by_worker``, as its worker)."""
        app = self._pending()
        if not app:
            return None
        actor = app.worker_id if by_worker else app.job.client_id
        return job_reads(app.job), self.write("POST", f"{API}/applications/{app.pk}/{action}/", actor, expect=(200,))

    def accept(self):
        return self._act_on_pending("accept")

    def reject(self):
        return self._act_on_pending("reject")

    def withdraw(self):
        return self._act_on_pending("withdraw", by_worker=True)

    def save(self):
        worker = self.rng.choice(self.world.workers)
        job = self.pick(Job.objects.exclude(saved_by__user=worker).exclude(status=JobStatus.CANCELLED))
        if not job:
            return None
        reads = [(f"{API}/users/me/saved-jobs/?per_page=100", worker.pk)]
        return reads, self.write("POST", f"{API}/jobs/{job.pk}/save/", worker.pk, expect=(200, 201))

    def unsave(self):
        saved = self.pick(SavedJob.objects.all())
        if not saved:
            return None
        reads = [(f"{API}/users/me/saved-jobs/?per_page=100", saved.user_id)]
        return reads, self.write("DELETE", f"{API}/jobs/{saved.job_id}/save/", saved.user_id, expect=(200, 204))

    def name_edit(self):
        user = self.rng.choice([*self.world.clients, *self.world.workers])
        body = {"first_name": f"Name{uuid.uuid4().hex[:6]}"}
        return user_reads(user), self.write("PATCH", f"{API}/users/me/", user.pk, body, expect=(200,))

    def profile_edit(self):
        user = self.rng.choice([*self.world.clients, *self.world.workers])
        body = {"profile": {"city": f"City {uuid.uuid4().hex[:6]}", "bio": "Edited."}}
        reads = [(f"{API}/users/me/", user.pk), (f"{API}/users/{user.pk}/", None)]
        return reads, self.write("PATCH", f"{API}/users/me/", user.pk, body, expect=(200,))

    def _people_of(self, job):
        workers = list(
            Application.objects.filter(job=job, status=ApplicationStatus.ACCEPTED).values_list("worker_id", flat=True)
        )
        return [(f"{API}/users/{pk}/", None) for pk in [job.client_id, *workers]]

    def start(self):
        # Startable: from EARLY_START_WINDOW before the shift's start.
        opens = timezone.now() + EARLY_START_WINDOW
        job = self.pick(Job.objects.filter(status=JobStatus.FILLED, start_at__lte=opens))
        if not job:
            return None
        return job_reads(job) + self._people_of(job), self.write(
            "POST", f"{API}/jobs/{job.pk}/start/", job.client_id, expect=(200,))

    def complete(self):
        job = self.pick(Job.objects.filter(status=JobStatus.IN_PROGRESS, start_at__lte=timezone.now()))
        if not job:
            return None
        return job_reads(job) + self._people_of(job), self.write(
            "POST", f"{API}/jobs/{job.pk}/complete/", job.client_id, expect=(200,))

    def payment_create(self):
        # Payable: a worker accepted on a completed job, not paid yet (one live payment per job and worker).
        live = Payment.objects.filter(status__in=LIVE_STATUSES, job=OuterRef("job"), recipient=OuterRef("worker"))
        app = self.pick(
            Application.objects.filter(status=ApplicationStatus.ACCEPTED, job__status=JobStatus.COMPLETED)
            .exclude(Exists(live))
        )
        if not app:
            return None
        job = app.job
        body = {"job": job.pk, "recipient": app.worker_id, "amount": f"{self.rng.randint(10, 99)}.{self.rng.randint(0, 99):02d}",
                "currency": job.currency}
        reads = payment_reads(job.client_id, app.worker_id, None, self.world.staff.pk)
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        return reads, self.write("POST", f"{API}/payments/", job.client_id, body, expect=(201,), headers=headers)

    def _act_on_payment(self, status: str, action: str):
        """POST ``action`` on a payment in ``status``, as its payer."""
        payment = self.pick(Payment.objects.filter(status=status))
        if not payment:
            return None
        reads = payment_reads(payment.payer_id, payment.recipient_id, payment.pk, self.world.staff.pk)
        return reads, self.write("POST", f"{API}/payments/{payment.pk}/{action}/", payment.payer_id, expect=(200,))

    def payment_confirm(self):
        return self._act_on_payment(PaymentStatus.PENDING, "confirm")

    def payment_refund(self):
        return self._act_on_payment(PaymentStatus.SUCCEEDED, "refund")

    def review_create(self):
        pairs = []
        for app in Application.objects.filter(
            status=ApplicationStatus.ACCEPTED, job__status=JobStatus.COMPLETED
        ).select_related("job"):
            for reviewer, reviewed in ((app.job.client_id, app.worker_id), (app.worker_id, app.job.client_id)):
                if not Review.objects.filter(job=app.job, reviewer_id=reviewer, reviewed_id=reviewed).exists():
                    pairs.append((app.job, reviewer, reviewed))
        if not pairs:
            return None
        job, reviewer, reviewed = self.rng.choice(pairs)
        reads = [
            (f"{API}/reviews/?job={job.pk}", None),
            (f"{API}/reviews/?reviewed={reviewed}", None),
            (f"{API}/users/{reviewed}/reviews/", None),
            (f"{API}/users/{reviewer}/reviews-given/", None),
            (f"{API}/users/{reviewed}/", None),
            # The new rating shows wherever the reviewed user appears.
            *user_reads(User.objects.get(pk=reviewed)),
        ]
        body = {"job": job.pk, "reviewed": reviewed, "rating": self.rng.randint(1, 5), "comment": "Fine."}
        return reads, self.write("POST", f"{API}/reviews/", reviewer, body, expect=(201,))

    def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.pairs >= MIN_PAIRS and all(self.kinds[k] >= 3 for k in KINDS):
                return
            # Until every kind has had 3 turns, the kinds done least are likelier.
            if all(self.kinds[k] >= 3 for k in KINDS):
                weights = [1.0] * len(KINDS)
            else:
                weights = [1.0 / (1 + self.kinds[k]) ** 2 for k in KINDS]
            kind = self.rng.choices(KINDS, weights)[0]
            planned = getattr(self, kind)()
            if planned is None:
                continue
            reads, write = planned
            self.step(kind, reads, write)


def test_no_stale_read_across_processes(servers):
    a, b = servers
    rng = random.Random(20261123)
    world = World(rng)
    run = Run(world, a, b, rng)
    started = time.monotonic()
    try:
        run.run(deadline=started + TIME_BUDGET_SECONDS)
    finally:
        run.pool.shutdown()
    elapsed = time.monotonic() - started
    summary = (
        f"{run.pairs} write/read pairs over {sum(run.kinds.values())} writes in {elapsed:.0f}s; "
        f"stale={len(run.stale)}; pre-write HIT {run.pre_hits}/{run.pre_total}; "
        f"post-write MISS {run.post_miss}/{run.pairs}; kinds={dict(run.kinds)}"
    )
    print(summary)
    assert run.stale == [], summary + "\n" + "\n".join(run.stale[:20])
    missing = [k for k in KINDS if run.kinds[k] == 0]
    assert missing == [], f"kinds of change never exercised: {missing}; {summary}"
    assert run.pairs >= MIN_PAIRS, summary
    # The entries existed before the writes: what the fresh reads show is invalidation.
    assert run.pre_hits >= 0.95 * run.pre_total, summary
    # Writes and reads ran in different processes, and reads on both of B's workers.
    a_pids = set(a.worker_pids_by_request().values())
    b_by_request = b.worker_pids_by_request()
    read_pids = {b_by_request[r] for r in run.read_ids if r in b_by_request}
    assert len(a_pids) == 1 and len(read_pids) >= 2 and not (a_pids & read_pids), (a_pids, read_pids)
    replicas = [alias for alias in settings.DATABASES if alias.startswith("replica_")]
    if replicas:
        # With read replicas (DATABASE_REPLICA_URLS): the reads that may go there do,
        # and nothing else ever does.
        counts = {key: a.db_queries().get(key, 0) + b.db_queries().get(key, 0)
                  for key in {*a.db_queries(), *b.db_queries()}}
        print("statements by database and kind:", {f"{d}/{k}": int(v) for (d, k), v in sorted(counts.items())})
        assert sum(counts.get((r, "read"), 0) for r in replicas) > 0, counts
        assert sum(counts.get((r, kind), 0) for r in replicas for kind in ("write", "locking_read")) == 0, counts


PRIVATE_PATHS = (
    "/users/me/",
    "/payments/?per_page=100",
    "/applications/?per_page=100",
    "/users/me/balance/",
    "/users/me/saved-jobs/?per_page=100",
)


def test_private_data_is_never_served_to_another_user(servers):
    """Warm each private GET as every user (through both servers), then read it as
    every other user: each gets their own data -- equal to a fresh, uncached read
    as themselves -- never someone else's (ids and e-mails compared)."""
    a, b = servers
    world = World(random.Random(7))
    # Payments so that balances and payment lists differ per user.
    for app in Application.objects.select_related("job")[:4]:
        Application.objects.filter(pk=app.pk).update(status=ApplicationStatus.ACCEPTED)
        Payment.objects.create(
            payer_id=app.job.client_id, recipient_id=app.worker_id, job=app.job, amount="10.00", currency="EUR",
            reference=uuid.uuid4().hex, idempotency_key=uuid.uuid4().hex, request_fingerprint="x",
        )
    users = [*world.clients, *world.workers]
    for path in PRIVATE_PATHS:
        served = {}
        for user in users:
            for server in (a, b, b):  # a MISS, then HITs in other processes
                response = server.api.get(API + path, token=world.tok(user.pk))
                assert response.status == 200, (path, response.status)
            assert response.x_cache == "HIT", path
            served[user.pk] = response.data
        # A leak would be visible: the users' data differ.
        assert len({repr(d) for d in served.values()}) > 1, path
        for user in rng_order(users):
            response = b.api.get(API + path, token=world.tok(user.pk))
            sep = "&" if "?" in path else "?"
            fresh = b.api.get(f"{API}{path}{sep}_fresh={uuid.uuid4().hex}", token=world.tok(user.pk))
            assert response.x_cache == "HIT" and fresh.x_cache == "MISS"
            assert response.data == fresh.data == served[user.pk], f"{path}: user {user.pk} got other data"
            if path == "/users/me/":
                assert (response.data["id"], response.data["email"]) == (user.pk, user.email)
            elif path != "/users/me/balance/":
                ids = {row["id"] for row in response.data}
                assert ids == _expected_ids(path, user), f"{path}: user {user.pk} got rows not theirs"


def rng_order(items):
    items = list(items)
    random.Random(11).shuffle(items)
    return items


def _expected_ids(path: str, user) -> set[int]:
    """The rows the database says are this user's."""
    if path.startswith("/payments/"):
        return set(Payment.objects.involving(user).values_list("pk", flat=True))
    if path.startswith("/applications/"):
        return set(Application.objects.visible_to(user).values_list("pk", flat=True))
    return set(SavedJob.objects.filter(user=user).values_list("job_id", flat=True))


def test_a_logout_in_one_process_is_refused_by_the_others_on_the_very_next_request(servers):
    """Signed-in hits in B's workers, which by then check the caller in the same
    round trip as the response (callers.remembered_caller); the user logs out
    through A; every next request with that token, whichever of B's workers takes
    it, is a 401, while another user's token still hits."""
    a, b = servers
    world = World(random.Random(11))
    user, other = world.clients[0], world.workers[0]
    paths = ("/users/me/", "/users/me/balance/", "/payments/?per_page=100")
    for path in paths:
        for _ in range(8):  # several per worker: the token's hint, its entry, then remembered
            response = b.api.get(API + path, token=world.tok(user.pk))
            assert response.status == 200, (path, response.status)
        assert response.x_cache == "HIT", path
        for _ in range(4):
            other_response = b.api.get(API + path, token=world.tok(other.pk))
        assert other_response.x_cache == "HIT", path
    assert a.api.request("POST", API + "/auth/logout/", token=world.tok(user.pk)).status == 204
    for path in paths:
        for _ in range(6):
            assert b.api.get(API + path, token=world.tok(user.pk)).status == 401, path
        response = b.api.get(API + path, token=world.tok(other.pk))
        assert response.status == 200 and response.x_cache == "HIT", path
