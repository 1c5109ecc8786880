"""``manage.py seed``: deterministic demo data for development, the README
walkthrough and benchmarks.

The data is planned first, in plain Python, from ``random.Random(--random-seed)``
and a base time (``--base-time``, default: now floored to the hour), then written
with ``bulk_create`` in batches; many-to-many links go straight into their through
tables. Same arguments and base time -> the same rows.

The rows keep the marketplace rules of the services (jobs/payments/ratings
``services.py``; ``tests/tools/test_seed_rules.py`` checks every seeded row
against them). The seed writes planned rows in bulk rather than one service call
per row (100k jobs in seconds), so it plans by the same rules:
- ``Job.applications_count`` / ``accepted_count`` match the application rows
  (a cancelled job's hires, ``hire_cancelled``, still count);
  ``accepted_count <= workers_needed``, and equals it for filled, in-progress and
  completed jobs (whose other applications are rejected or withdrawn); an open
  job is never full;
- time: open, filled and cancelled shifts are ahead of the base time; a job in
  progress has started, a completed one has ended;
- a cancelled job has no pending or accepted application left: they are
  ``cancelled`` and ``hire_cancelled``, as ``job_cancel`` leaves them;
- payments go from a completed job's client to one of its accepted workers, in
  the job's currency, of the shift's worth to the worker (``Job.worth_per_worker``),
  at most one per job and worker;
- reviews link the client and an accepted worker of a completed job, at most once
  per direction; ``User.rating_sum`` / ``rating_count`` match the reviews received;
- ``User.completed_jobs`` counts completed jobs: a client's own, a worker's
  accepted ones.

Cache: bulk writes send no signals, so the seed bumps the scopes its rows change
itself, by the apps' own names (``seeded_scopes``). Seed refuses a database that
already has jobs (unless ``--flush``) and only *creates* users and rows, and new
rows have new ids: no ``user:<id>``, ``job:<id>`` or other per-row scope of a
pre-existing row changes. What changes: the job lists (``jobs``, and ``jobs:set``
of the plain list), the category, skill and review lists, and the per-user lists
addressable by an id that had no user yet (a user's reviews received and given, a
user's payments: such a list may be cached, empty, before the seed gives the id a
user). With ``--flush`` every row goes, so this deployment's whole response cache
goes too.

A tool above the apps (``tools``): it imports their models and scope names directly.
"""
from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice

from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from accounts.cache import SKILLS
from accounts.models import Profile, Skill, User
from core.cache import bump_now
from jobs.cache import CATEGORIES, JOB_SET, JOBS
from jobs.models import Application, ApplicationStatus, Category, Job, SavedJob
from payments.cache import payments_scope
from payments.models import Payment
from ratings.cache import REVIEWS, given_scope, received_scope
from ratings.models import Review

DEMO_PASSWORD = "demo-pass-123"
DEMO_ADMIN_EMAIL = "admin@shiftboard.local"
DEMO_CLIENT_EMAIL = "client@shiftboard.local"
DEMO_WORKER_EMAIL = "worker@shiftboard.local"
GENERATED_EMAIL_DOMAIN = "seed.shiftboard.local"

DEFAULT_JOBS = 200
MIN_JOBS = 10
DEFAULT_RANDOM_SEED = 20261123
BATCH_SIZE = 5000

# The global scopes of every list that can show a seeded row.
GLOBAL_SCOPES = (JOBS, JOB_SET, CATEGORIES, SKILLS, REVIEWS)
# Scopes are bumped in batches of this many (one round trip each).
BUMP_BATCH = 5000

# Apps whose rows --flush wipes (with their auto-created many-to-many tables).
FLUSHED_APPS = ("ratings", "payments", "jobs", "accounts", "authtoken", "admin")

OPEN, FILLED, IN_PROGRESS, COMPLETED, CANCELLED = "open", "filled", "in_progress", "completed", "cancelled"
JOB_STATUSES = (OPEN, FILLED, IN_PROGRESS, COMPLETED, CANCELLED)
JOB_STATUS_WEIGHTS = (40, 10, 10, 30, 10)
PENDING, ACCEPTED, REJECTED, WITHDRAWN = "pending", "accepted", "rejected", "withdrawn"
# A cancelled job's applications: pending ones closed, accepted ones marked.
CLOSED, HIRE_CANCELLED = ApplicationStatus.CANCELLED.value, ApplicationStatus.HIRE_CANCELLED.value
SUCCEEDED = "succeeded"
CLIENT, WORKER = "client", "worker"

# Applications per job: 0..6, mean 3.
APPLICATIONS_PER_JOB = (0, 1, 2, 3, 4, 5, 6)
APPLICATIONS_PER_JOB_WEIGHTS = (5, 10, 20, 30, 20, 10, 5)
WORKERS_NEEDED = (1, 2, 3)
WORKERS_NEEDED_WEIGHTS = (6, 3, 1)
RATINGS = (1, 2, 3, 4, 5)
RATING_WEIGHTS = (3, 5, 12, 35, 45)

# (category, job roles, skills the category's jobs ask for)
CATEGORIES = (
    ("Hospitality", ("Waiter", "Barista", "Bartender", "Host"), ("Waiting tables", "Barista", "Bartending", "Customer service")),
    ("Kitchen", ("Line cook", "Kitchen porter", "Prep cook"), ("Cooking", "Dishwashing", "Food hygiene")),
    ("Retail", ("Sales assistant", "Cashier", "Shelf stacker"), ("Cash register", "Stocking shelves", "Customer service")),
    ("Warehouse", ("Picker", "Forklift driver", "Packer"), ("Picking and packing", "Forklift", "Heavy lifting")),
    ("Delivery", ("Bike courier", "Van driver", "Delivery helper"), ("Cycling", "Driving licence B", "Heavy lifting")),
    ("Events", ("Event crew", "Steward", "Cloakroom attendant"), ("Event setup", "Security", "Customer service")),
    ("Cleaning", ("Office cleaner", "Housekeeper", "Window cleaner"), ("Cleaning", "Housekeeping")),
    ("Office", ("Receptionist", "Data entry clerk", "Admin assistant"), ("Reception", "Data entry", "Spreadsheets")),
    ("Care", ("Care assistant", "Babysitter", "Companion"), ("Elderly care", "Childcare", "First aid")),
    ("Construction", ("Labourer", "Painter", "Site helper"), ("Painting", "Heavy lifting", "First aid")),
)
LANGUAGE_SKILLS = ("English", "German", "French", "Spanish")
SKILLS = tuple(sorted({s for _, _, skills in CATEGORIES for s in skills} | set(LANGUAGE_SKILLS)))
CITIES = (
    ("Berlin", "EUR"), ("Hamburg", "EUR"), ("Munich", "EUR"), ("Cologne", "EUR"), ("Amsterdam", "EUR"),
    ("Vienna", "EUR"), ("Paris", "EUR"), ("Lyon", "EUR"), ("Madrid", "EUR"), ("Lisbon", "EUR"),
    ("Dublin", "EUR"), ("London", "GBP"), ("Manchester", "GBP"), ("New York", "USD"), ("Boston", "USD"),
)
SHIFTS = ("morning shift", "evening shift", "night shift", "weekend shift", "full day", "lunch rush", "short-notice cover")
SHIFT_HOURS = (4, 6, 8, 10)
FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Klara", "Leon",
    "Maria", "Noah", "Olga", "Paul", "Rosa", "Samir", "Tara", "Umar", "Vera", "Will", "Yara", "Zoe",
)
LAST_NAMES = (
    "Adler", "Becker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ivanova", "Jansen",
    "Keller", "Lopez", "Martin", "Nowak", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Torres",
    "Ueda", "Vogel", "Weber", "Young",
)
JOB_EXTRAS = (
    "Friendly team, meals included.",
    "Experience preferred but not required.",
    "Please arrive 15 minutes early.",
    "Uniform provided on site.",
    "Public transport nearby.",
    "Great for students.",
)
BIOS = (
    "Reliable and quick to learn.",
    "Five years of shift work behind me.",
    "Student looking for flexible shifts.",
    "Happy to cover at short notice.",
    "Calm under pressure, good with people.",
)
COVER_NOTES = (
    "I have done this kind of shift many times.",
    "Available the whole day, happy to help.",
    "I live close by and can start on time.",
    "",
)
REVIEW_COMMENTS = ("Great work, thank you!", "On time and friendly.", "Would work together again.", "OK overall.", "")


# --- the plan ----------------------------------------------------------------------


@dataclass(slots=True)
class PlannedUser:
    email: str
    first_name: str
    last_name: str
    role: str
    date_joined: datetime
    city: str
    phone: str = ""
    bio: str = ""
    hourly_rate: Decimal | None = None
    skills: tuple[int, ...] = ()
    is_staff: bool = False
    is_email_verified: bool = False
    rating_sum: int = 0
    rating_count: int = 0
    completed_jobs: int = 0


@dataclass(slots=True)
class PlannedJob:
    client: int  # index into Plan.users
    title: str
    description: str
    category: int  # index into CATEGORIES
    skills: tuple[int, ...]  # indexes into SKILLS
    city: str
    currency: str
    rate: Decimal
    workers_needed: int
    start_at: datetime
    end_at: datetime
    status: str
    created_at: datetime
    updated_at: datetime
    # (worker user index, status, cover note, created_at)
    applications: list[tuple[int, str, str, datetime]] = field(default_factory=list)

    @property
    def accepted_workers(self) -> list[int]:
        return [worker for worker, status, _, _ in self.applications if status == ACCEPTED]

    @property
    def hired_count(self) -> int:
        """``accepted_count``: accepted, or hired and then the job cancelled."""
        return sum(1 for _, status, _, _ in self.applications if status in (ACCEPTED, HIRE_CANCELLED))


@dataclass(slots=True)
class Plan:
    users: list[PlannedUser]
    jobs: list[PlannedJob]
    # (job index, payer, recipient, amount, status, created_at)
    payments: list[tuple[int, int, int, Decimal, str, datetime]]
    # (job index, reviewer, reviewed, rating, comment, created_at)
    reviews: list[tuple[int, int, int, int, str, datetime]]
    # (user index, job index, created_at)
    saved: list[tuple[int, int, datetime]]


class Planner:
    """Builds the whole data set in memory from one seeded RNG: no database access,
    so the same seed, size and base time always give the same plan."""

    # Jobs 0..2 belong to the demo client and carry the README walkthrough.
    SCENARIO_JOBS = 3

    def __init__(self, *, n_jobs: int, random_seed: int, base: datetime):
        self.rng = random.Random(random_seed)
        self.base = base
        self.n_jobs = n_jobs
        n_users = max(12, round(n_jobs / 10))
        self.n_clients = max(3, n_users // 3)
        self.n_workers = max(8, n_users - self.n_clients)

    def plan(self) -> Plan:
        users = self._users()
        # Users 0, 1, 2 are the demo admin, client and worker; then clients, then workers.
        self.clients = [1] + list(range(3, 3 + self.n_clients - 1))
        self.workers = [2] + list(range(3 + self.n_clients - 1, len(users)))
        jobs = self._scenario_jobs() + [self._job(i) for i in range(self.n_jobs - self.SCENARIO_JOBS)]
        payments = self._payments(jobs)
        reviews = self._reviews(jobs)
        saved = self._saved(jobs)
        self._count(users, jobs, reviews)
        return Plan(users=users, jobs=jobs, payments=payments, reviews=reviews, saved=saved)

    # users

    def _users(self) -> list[PlannedUser]:
        rng, base = self.rng, self.base
        joined = base - timedelta(days=400)
        users = [
            PlannedUser(DEMO_ADMIN_EMAIL, "Site", "Admin", CLIENT, joined, "Berlin", is_staff=True, is_email_verified=True),
            PlannedUser(DEMO_CLIENT_EMAIL, "Clara", "Client", CLIENT, joined, "Berlin", phone="+49 30 5550100",
                        bio="We run three cafés in Berlin.", is_email_verified=True),
            PlannedUser(DEMO_WORKER_EMAIL, "Walter", "Worker", WORKER, joined, "Berlin", phone="+49 30 5550200",
                        bio=BIOS[0], hourly_rate=Decimal("18.50"), skills=self._skill_ids(("Barista", "Waiting tables", "English")),
                        is_email_verified=True),
        ]
        n_generated = self.n_clients - 1 + self.n_workers - 1
        for i in range(n_generated):
            role = CLIENT if i < self.n_clients - 1 else WORKER
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            city = rng.choice(CITIES)[0]
            user = PlannedUser(
                email=f"{first}.{last}.{i + 1}@{GENERATED_EMAIL_DOMAIN}".lower(),
                first_name=first,
                last_name=last,
                role=role,
                date_joined=base - timedelta(minutes=rng.randint(60 * 24 * 200, 60 * 24 * 400)),
                city=city,
                phone=f"+49 {rng.randint(150, 179)} {rng.randint(1000000, 9999999)}",
                is_email_verified=rng.random() < 0.7,
            )
            if role == WORKER:
                user.bio = rng.choice(BIOS)
                user.hourly_rate = Decimal(rng.randint(1200, 3500)) / 100
                user.skills = tuple(sorted(rng.sample(range(len(SKILLS)), rng.randint(2, 5))))
            users.append(user)
        return users

    @staticmethod
    def _skill_ids(names) -> tuple[int, ...]:
        return tuple(sorted(SKILLS.index(name) for name in names))

    # jobs and applications

    def _job_fields(self, *, client: int, status: str, start_at: datetime, hours: int, created_at: datetime,
                    workers_needed: int, category: int | None = None) -> PlannedJob:
        rng = self.rng
        if category is None:
            category = rng.randrange(len(CATEGORIES))
        cat_name, roles, cat_skills = CATEGORIES[category]
        role, shift = rng.choice(roles), rng.choice(SHIFTS)
        city, currency = rng.choice(CITIES)
        skill_names = rng.sample(cat_skills, rng.randint(1, min(2, len(cat_skills))))
        if rng.random() < 0.3:
            skill_names.append(rng.choice(LANGUAGE_SKILLS))
        return PlannedJob(
            client=client,
            title=f"{role}, {shift}",
            description=f"{role} needed for a {shift} in {city}. {rng.choice(JOB_EXTRAS)}",
            category=category,
            skills=self._skill_ids(set(skill_names)),
            city=city,
            currency=currency,
            rate=Decimal(rng.randint(1200, 4500)) / 100,
            workers_needed=workers_needed,
            start_at=start_at,
            end_at=start_at + timedelta(hours=hours),
            status=status,
            created_at=created_at,
            updated_at=created_at,
        )

    def _job(self, i: int) -> PlannedJob:
        rng, base = self.rng, self.base
        # The first five generated jobs take every status in turn: all present at any size.
        status = JOB_STATUSES[i] if i < len(JOB_STATUSES) else rng.choices(JOB_STATUSES, JOB_STATUS_WEIGHTS)[0]
        hours = rng.choice(SHIFT_HOURS)
        created = base - timedelta(minutes=rng.randint(60, 180 * 24 * 60))
        if status == IN_PROGRESS:
            start = base - timedelta(hours=rng.randint(1, hours - 1))
            created = min(created, start - timedelta(days=1))
        elif status == COMPLETED:
            start = base - timedelta(hours=rng.randint(hours + 1, 90 * 24))
            created = min(created, start - timedelta(days=rng.randint(1, 14)))
        else:  # open, filled, cancelled: the shift is still ahead
            start = base + timedelta(hours=rng.randint(24, 45 * 24))
        job = self._job_fields(
            client=rng.choice(self.clients), status=status, start_at=start, hours=hours, created_at=created,
            workers_needed=rng.choices(WORKERS_NEEDED, WORKERS_NEEDED_WEIGHTS)[0],
        )
        self._applications(job)
        return job

    def _applications(self, job: PlannedJob) -> None:
        rng = self.rng
        wanted = rng.choices(APPLICATIONS_PER_JOB, APPLICATIONS_PER_JOB_WEIGHTS)[0]
        if job.status in (FILLED, IN_PROGRESS, COMPLETED):
            wanted = max(wanted, job.workers_needed)
        workers = rng.sample(self.workers, min(wanted, len(self.workers)))
        if job.status in (FILLED, IN_PROGRESS, COMPLETED):
            n_accepted = job.workers_needed
        elif job.status == OPEN:
            # Reaching workers_needed would have filled the job.
            n_accepted = rng.randint(0, min(len(workers), job.workers_needed - 1))
        else:  # cancelled from open or from filled
            n_accepted = rng.randint(0, min(len(workers), job.workers_needed))
        for position, worker in enumerate(workers):
            if position < n_accepted:
                status = HIRE_CANCELLED if job.status == CANCELLED else ACCEPTED
            elif job.status == OPEN:
                status = rng.choices((PENDING, REJECTED, WITHDRAWN), (70, 20, 10))[0]
            elif job.status == CANCELLED:
                # Pending when the job was cancelled: closed by job_cancel.
                status = rng.choices((CLOSED, REJECTED, WITHDRAWN), (50, 35, 15))[0]
            else:
                status = rng.choices((REJECTED, WITHDRAWN), (75, 25))[0]
            job.applications.append((worker, status, rng.choice(COVER_NOTES), self._during_hiring(job)))
        self._settle_job_times(job)

    def _during_hiring(self, job: PlannedJob) -> datetime:
        """A moment after the job was posted and before its shift (or now)."""
        window = int((min(job.start_at, self.base) - job.created_at).total_seconds() // 60)
        return job.created_at + timedelta(minutes=self.rng.randint(1, max(1, window - 1)))

    def _settle_job_times(self, job: PlannedJob) -> None:
        last_change = max([job.created_at] + [created for *_, created in job.applications])
        if job.status == IN_PROGRESS:
            last_change = job.start_at
        elif job.status == COMPLETED:
            last_change = job.end_at
        job.updated_at = last_change

    def _scenario_jobs(self) -> list[PlannedJob]:
        """The README walkthrough: the demo worker is accepted on a completed job of
        the demo client (nobody paid or reviewed yet) and on one in progress, and has
        a pending application on an open one."""
        base, rng = self.base, self.rng
        demo_client, demo_worker = 1, 2
        others = rng.sample(self.workers[1:], 4)
        completed = self._job_fields(
            client=demo_client, status=COMPLETED, start_at=base - timedelta(days=2), hours=8,
            created_at=base - timedelta(days=7), workers_needed=1, category=0,
        )
        completed.applications = [
            (demo_worker, ACCEPTED, COVER_NOTES[0], base - timedelta(days=6)),
            (others[0], REJECTED, COVER_NOTES[1], base - timedelta(days=6, hours=3)),
        ]
        in_progress = self._job_fields(
            client=demo_client, status=IN_PROGRESS, start_at=base - timedelta(hours=2), hours=8,
            created_at=base - timedelta(days=4), workers_needed=2, category=0,
        )
        in_progress.applications = [
            (demo_worker, ACCEPTED, COVER_NOTES[1], base - timedelta(days=3)),
            (others[1], ACCEPTED, COVER_NOTES[2], base - timedelta(days=3, hours=5)),
            (others[2], REJECTED, COVER_NOTES[0], base - timedelta(days=3, hours=7)),
        ]
        open_job = self._job_fields(
            client=demo_client, status=OPEN, start_at=base + timedelta(days=3), hours=6,
            created_at=base - timedelta(hours=1), workers_needed=2, category=0,
        )
        open_job.applications = [
            (demo_worker, PENDING, COVER_NOTES[2], base - timedelta(minutes=30)),
            (others[3], PENDING, COVER_NOTES[0], base - timedelta(minutes=45)),
        ]
        jobs = [completed, in_progress, open_job]
        for job in jobs:
            self._settle_job_times(job)
        return jobs

    # payments, reviews, saved jobs

    def _after_shift(self, job: PlannedJob) -> datetime:
        return min(self.base, job.end_at + timedelta(minutes=self.rng.randint(10, 3 * 24 * 60)))

    def _completed_pairs(self, jobs: list[PlannedJob]) -> list[tuple[int, int]]:
        """(job index, accepted worker) of completed jobs, walkthrough jobs excluded
        (the walkthrough pays and reviews those itself)."""
        return [
            (j, worker)
            for j in range(self.SCENARIO_JOBS, len(jobs))
            if jobs[j].status == COMPLETED
            for worker in jobs[j].accepted_workers
        ]

    def _payments(self, jobs):
        rng = self.rng
        pairs = self._completed_pairs(jobs)
        rng.shuffle(pairs)
        payments = []
        for j, worker in pairs[: round(self.n_jobs / 5)]:
            job = jobs[j]
            # The most the payment rule allows: the shift's worth to the worker.
            amount = Job(rate=job.rate, start_at=job.start_at, end_at=job.end_at).worth_per_worker
            status = SUCCEEDED if rng.random() < 0.75 else PENDING
            payments.append((j, job.client, worker, amount, status, self._after_shift(job)))
        return payments

    def _reviews(self, jobs):
        rng = self.rng
        directed = []
        for j, worker in self._completed_pairs(jobs):
            directed.append((j, jobs[j].client, worker))
            directed.append((j, worker, jobs[j].client))
        rng.shuffle(directed)
        return [
            (j, reviewer, reviewed, rng.choices(RATINGS, RATING_WEIGHTS)[0], rng.choice(REVIEW_COMMENTS),
             self._after_shift(jobs[j]))
            for j, reviewer, reviewed in directed[: round(self.n_jobs / 5)]
        ]

    def _saved(self, jobs):
        rng, base = self.rng, self.base
        wanted = round(self.n_jobs / 2)
        seen: set[tuple[int, int]] = set()
        saved = []
        # The demo worker has a few saved jobs to show.
        candidates = [(2, j) for j in range(self.SCENARIO_JOBS, min(len(jobs), self.SCENARIO_JOBS + 12), 4)]
        for _ in range(wanted * 3):  # bounded: duplicates are skipped
            if len(saved) >= wanted:
                break
            if candidates:
                user, j = candidates.pop(0)
            else:
                user = rng.choice(self.workers) if rng.random() < 0.85 else rng.choice(self.clients)
                j = rng.randrange(len(jobs))
            if (user, j) in seen:
                continue
            seen.add((user, j))
            job = jobs[j]
            saved.append((user, j, job.created_at + (base - job.created_at) * rng.random()))
        return saved

    # counters

    @staticmethod
    def _count(users, jobs, reviews) -> None:
        for job in jobs:
            if job.status == COMPLETED:
                users[job.client].completed_jobs += 1
                for worker in job.accepted_workers:
                    users[worker].completed_jobs += 1
        for _, _, reviewed, rating, _, _ in reviews:
            users[reviewed].rating_sum += rating
            users[reviewed].rating_count += 1


# --- writing ---------------------------------------------------------------------------


def _batches(iterable, size=BATCH_SIZE):
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


class _ExplicitTimestamps:
    """Lets bulk_create keep the planned created_at / updated_at: ``auto_now`` and
    ``auto_now_add`` fields overwrite any value in ``pre_save``. Switched off only
    for the duration of the seed (a management command, one thread)."""

    def __init__(self, models):
        self.fields = [
            f
            for m in models
            for f in m._meta.concrete_fields
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        ]
        self.saved = []

    def __enter__(self):
        self.saved = [(f, f.auto_now, f.auto_now_add) for f in self.fields]
        for f in self.fields:
            f.auto_now = f.auto_now_add = False

    def __exit__(self, *exc):
        for f, auto_now, auto_now_add in self.saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


class BulkCreateWriter:
    """Inserts rows (tuples of field attnames' values) with ``bulk_create`` in
    batches, building each batch lazily: 100k jobs never sit in memory as model
    instances. Any database that returns ids from a bulk insert."""

    def __init__(self, models):
        self.timestamps = _ExplicitTimestamps(models)

    def __enter__(self):
        self.timestamps.__enter__()
        return self

    def __exit__(self, *exc):
        self.timestamps.__exit__(*exc)

    def insert(self, model, columns: tuple[str, ...], rows, *, count: int | None = None) -> list[int]:
        """Insert ``rows``; with ``count`` (the number of rows) return their new ids in order."""
        ids: list[int] = []
        for batch in _batches(rows):
            created = model.objects.bulk_create([model(**dict(zip(columns, row))) for row in batch], batch_size=BATCH_SIZE)
            if count is not None:
                ids.extend(obj.pk for obj in created)
        return ids


class PostgresCopyWriter:
    """Inserts rows with ``COPY … FROM STDIN`` (psycopg 3): no model instances and
    no SQL per batch, ~4x faster than bulk_create for 100k jobs. Ids that later rows
    point to are taken from the table's sequence up front (one ``nextval`` query
    for all rows), so the rows carry them and the sequence stays ahead of them.
    Columns the seed does not set get the field's default, as the ORM would."""

    def __init__(self, models):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def insert(self, model, columns: tuple[str, ...], rows, *, count: int | None = None) -> list[int]:
        opts = model._meta
        columns, defaults = self._with_defaults(model, columns)
        qn = connection.ops.quote_name
        ids: list[int] = []
        with connection.cursor() as cursor:
            if count is not None:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [opts.db_table, opts.pk.column, count],
                )
                ids = sorted(row[0] for row in cursor.fetchall())
                columns = (opts.pk.attname, *columns)
            names = ", ".join(qn(opts.get_field(c).column) for c in columns)
            with cursor.copy(f"COPY {qn(opts.db_table)} ({names}) FROM STDIN") as copy:
                if count is not None:
                    for pk, row in zip(ids, rows, strict=True):
                        copy.write_row((pk, *row, *defaults))
                else:
                    for row in rows:
                        copy.write_row((*row, *defaults))
        return ids

    @staticmethod
    def _with_defaults(model, columns):
        given = set(columns)
        extra, values = [], []
        for f in model._meta.concrete_fields:
            if f.primary_key or f.attname in given:
                continue
            if f.has_default():
                value = f.get_default()
            elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value = timezone.now()
            else:
                continue  # nullable or database-filled
            extra.append(f.attname)
            values.append(f.get_db_prep_save(value, connection))
        return (*columns, *extra), tuple(values)


def _writer(models):
    if connection.vendor == "postgresql":
        return PostgresCopyWriter(models)
    if not connection.features.can_return_rows_from_bulk_insert:
        raise CommandError(f"seed needs a database that returns ids from bulk inserts ({connection.vendor} does not).")
    return BulkCreateWriter(models)


def _flush_app_data() -> None:
    """Empty every table of the apps (and tokens, admin log): TRUNCATE … CASCADE on
    PostgreSQL, DELETE on SQLite. Sequences keep counting, so no id is reused."""
    tables = sorted(
        {
            m._meta.db_table
            for label in FLUSHED_APPS
            for m in apps.get_app_config(label).get_models(include_auto_created=True)
            if m._meta.managed and not m._meta.proxy
        }
    )
    statements = connection.ops.sql_flush(no_style(), tables, reset_sequences=False, allow_cascade=True)
    if connection.vendor == "postgresql":
        # PostgreSQL refuses TRUNCATE while deferred foreign-key checks of earlier
        # writes in the same transaction are pending (a test's transaction): run them now.
        connection.check_constraints()
    connection.ops.execute_sql_flush(statements)


def _clear_response_cache() -> None:
    # delete_pattern (django-redis) stays inside this deployment's KEY_PREFIX; a
    # plain clear() would empty a Redis database other deployments may share.
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()


def seeded_scopes(user_ids) -> list[str]:
    """What a seed without ``--flush`` changes (module docstring): the global list
    scopes, and the per-user lists of each new user's id (cached, empty, if anyone
    read them before the id had a user)."""
    scopes = list(GLOBAL_SCOPES)
    for pk in user_ids:
        scopes += [received_scope(pk), given_scope(pk), payments_scope(pk)]
    return scopes


def write_plan(plan: Plan, *, password_hash: str) -> dict[str, list[int]]:
    """Insert the plan; returns the new ids of users and jobs by plan index."""
    with _writer([Job, Application, SavedJob, Payment, Review]) as w:
        skill_ids = _named_rows(w, Skill, SKILLS)
        category_ids = _named_rows(w, Category, [name for name, _, _ in CATEGORIES])
        user_ids = w.insert(
            User,
            (
                "email", "password", "first_name", "last_name", "phone", "role", "is_email_verified",
                "is_active", "is_staff", "is_superuser", "date_joined", "rating_sum", "rating_count",
                "completed_jobs",
            ),
            (
                (
                    u.email, password_hash, u.first_name, u.last_name, u.phone, u.role, u.is_email_verified,
                    True, u.is_staff, u.is_staff, u.date_joined, u.rating_sum, u.rating_count, u.completed_jobs,
                )
                for u in plan.users
            ),
            count=len(plan.users),
        )
        profile_ids = w.insert(
            Profile,
            ("user_id", "bio", "city", "hourly_rate"),
            ((user_ids[i], u.bio, u.city, u.hourly_rate) for i, u in enumerate(plan.users)),
            count=len(plan.users),
        )
        w.insert(
            Profile.skills.through,
            ("profile_id", "skill_id"),
            ((profile_ids[i], skill_ids[s]) for i, u in enumerate(plan.users) for s in u.skills),
        )
        job_ids = w.insert(
            Job,
            (
                "client_id", "title", "description", "category_id", "city", "rate", "currency", "workers_needed",
                "start_at", "end_at", "status", "applications_count", "accepted_count", "created_at", "updated_at",
            ),
            (
                (
                    user_ids[j.client], j.title, j.description, category_ids[j.category], j.city, j.rate,
                    j.currency, j.workers_needed, j.start_at, j.end_at, j.status, len(j.applications),
                    j.hired_count, j.created_at, j.updated_at,
                )
                for j in plan.jobs
            ),
            count=len(plan.jobs),
        )
        w.insert(
            Job.skills.through,
            ("job_id", "skill_id"),
            ((job_ids[i], skill_ids[s]) for i, j in enumerate(plan.jobs) for s in j.skills),
        )
        w.insert(
            Application,
            ("job_id", "worker_id", "status", "cover_note", "created_at", "updated_at"),
            (
                (job_ids[i], user_ids[worker], status, note, created, created)
                for i, j in enumerate(plan.jobs)
                for worker, status, note, created in j.applications
            ),
        )
        w.insert(
            Payment,
            (
                "payer_id", "recipient_id", "job_id", "amount", "currency", "status", "reference",
                "idempotency_key", "request_fingerprint", "gateway_reference", "created_at", "updated_at",
            ),
            (_payment_row(n, p, plan, job_ids, user_ids) for n, p in enumerate(plan.payments)),
        )
        w.insert(
            Review,
            ("job_id", "reviewer_id", "reviewed_id", "rating", "comment", "created_at", "updated_at"),
            (
                (job_ids[j], user_ids[a], user_ids[b], rating, comment, created, created)
                for j, a, b, rating, comment, created in plan.reviews
            ),
        )
        w.insert(
            SavedJob,
            ("user_id", "job_id", "created_at"),
            ((user_ids[u], job_ids[j], created) for u, j, created in plan.saved),
        )
    return {"users": user_ids, "jobs": job_ids}


def _named_rows(writer, model, names) -> list[int]:
    """Ids of the skills / categories called ``names``: existing ones (made in the
    admin before any job) are reused, the others inserted."""
    ids = dict(model.objects.filter(name__in=names).values_list("name", "pk"))
    missing = [name for name in names if name not in ids]
    created = writer.insert(model, ("name", "slug"), [(n, slugify(n)) for n in missing], count=len(missing))
    ids.update(zip(missing, created))
    return [ids[name] for name in names]


def _payment_row(n, planned, plan, job_ids, user_ids) -> tuple:
    j, payer, recipient, amount, status, created = planned
    currency = plan.jobs[j].currency
    key = f"seed-{n:07d}"
    body = f"{j}|{recipient}|{amount}|{currency}"
    return (
        user_ids[payer], user_ids[recipient], job_ids[j], amount, currency, status, f"PAY-SEED-{n:07d}", key,
        hashlib.sha256(body.encode()).hexdigest(),
        f"fake_{hashlib.sha1(key.encode()).hexdigest()[:24]}" if status == SUCCEEDED else "",
        created, created,
    )


# --- the command -------------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Create deterministic demo data (categories, skills, users, jobs in every status, applications, "
        "payments, reviews, saved jobs) and print the demo logins."
    )

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                            help=f"number of jobs (default {DEFAULT_JOBS}); everything else scales with it")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when any job exists (make run)")
        parser.add_argument("--flush", action="store_true",
                            help="delete all users, jobs, payments, reviews, categories and skills first")
        parser.add_argument("--random-seed", type=int, default=DEFAULT_RANDOM_SEED, help="seed of the generator")
        parser.add_argument("--base-time", help="ISO 8601 time the data is relative to (default: now, to the hour)")

    def handle(self, *args, **options):
        # Every seeded user's password is DEMO_PASSWORD, printed in the README: only
        # for development (DEBUG=1) or a throwaway database that says so
        # (ALLOW_DEMO_PASSWORD=1, which check --deploy flags as shiftboard.W002).
        if not (settings.DEBUG or settings.ALLOW_DEMO_PASSWORD):
            raise CommandError(
                f"seed creates accounts whose password ({DEMO_PASSWORD}) is published: refused with DEBUG off. "
                "Set DEBUG=1 for development, or ALLOW_DEMO_PASSWORD=1 for a throwaway database "
                "(check --deploy flags it)."
            )
        n_jobs = options["jobs"]
        if n_jobs < MIN_JOBS:
            raise CommandError(f"--jobs must be at least {MIN_JOBS}.")
        if options["if_empty"] and options["flush"]:
            raise CommandError("--if-empty and --flush contradict each other.")
        base = self._base_time(options["base_time"])

        if not options["flush"]:
            if Job.objects.exists():
                if options["if_empty"]:
                    self._say("Jobs exist already: nothing seeded (--if-empty).")
                    self._say_demo_logins_if_present()
                    return
                raise CommandError("The database already has jobs. Use --flush to replace all data, or --if-empty.")
            if User.objects.filter(email__in=[DEMO_ADMIN_EMAIL, DEMO_CLIENT_EMAIL, DEMO_WORKER_EMAIL]).exists():
                raise CommandError("The demo users exist already. Use --flush to replace all data.")

        started = time.perf_counter()
        plan = Planner(n_jobs=n_jobs, random_seed=options["random_seed"], base=base).plan()
        planned = time.perf_counter()
        # One hash for every seeded user (all share the demo password): hashing
        # thousands of passwords would dominate the run. A fixed salt keeps the
        # rows identical between runs; this password is public anyway.
        password_hash = make_password(DEMO_PASSWORD, salt=f"shiftboardseed{options['random_seed']}")
        with transaction.atomic():
            if options["flush"]:
                _flush_app_data()
            ids = write_plan(plan, password_hash=password_hash)
            tokens = self._demo_tokens(ids["users"][:3])
        if options["flush"]:
            _clear_response_cache()
        else:
            scopes = seeded_scopes(ids["users"])
            for start in range(0, len(scopes), BUMP_BATCH):
                bump_now(scopes[start : start + BUMP_BATCH])
        elapsed = time.perf_counter() - started

        self._say(
            f"Seeded {len(plan.jobs)} jobs, {len(plan.users)} users, "
            f"{sum(len(j.applications) for j in plan.jobs)} applications, {len(plan.payments)} payments, "
            f"{len(plan.reviews)} reviews, {len(plan.saved)} saved jobs in {elapsed:.1f}s "
            f"(planning {planned - started:.1f}s)."
        )
        self._say_demo_logins(tokens)

    def _say_demo_logins(self, tokens: list[str]) -> None:
        self._say(f"Demo logins (password for every seeded user: {DEMO_PASSWORD}):")
        for role, email, token in zip(("admin ", "client", "worker"),
                                      (DEMO_ADMIN_EMAIL, DEMO_CLIENT_EMAIL, DEMO_WORKER_EMAIL), tokens):
            self._say(f"  {role}  {email:<26} token {token}")
        self._say("The demo worker is accepted on a completed and an in-progress job of the demo client.")

    def _say_demo_logins_if_present(self) -> None:
        """On every ``make run`` (not only the first): the demo logins and their
        tokens, when the demo users are still there (a token revoked by a logout is
        made anew)."""
        emails = (DEMO_ADMIN_EMAIL, DEMO_CLIENT_EMAIL, DEMO_WORKER_EMAIL)
        ids = dict(User.objects.filter(email__in=emails).values_list("email", "pk"))
        if len(ids) == len(emails):
            self._say_demo_logins(self._demo_tokens([ids[email] for email in emails]))

    @staticmethod
    def _base_time(raw: str | None) -> datetime:
        if raw is None:
            return timezone.now().replace(minute=0, second=0, microsecond=0)
        parsed = parse_datetime(raw)
        if parsed is None:
            raise CommandError(f"--base-time: {raw!r} is not an ISO 8601 date and time.")
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        return parsed

    @staticmethod
    def _demo_tokens(user_ids: list[int]) -> list[str]:
        return [Token.objects.get_or_create(user_id=pk)[0].key for pk in user_ids]

    def _say(self, line: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(line)

    def execute(self, *args, **options):
        self.verbosity = options.get("verbosity", 1)
        return super().execute(*args, **options)
