"""Cache scopes of the jobs app, and what a change to its models touches.

Coarse scopes (part of a response's key: they decide which rows a response shows
and in what order): ``jobs`` (membership and order of the filtered or re-ordered
public job lists: any job save - create, edit, cancel, start, complete, a status
change to ``filled`` - bumps it), ``jobs:set`` (membership of the PLAIN job list,
no filter and the default newest-first order, whose rows and order change only
when a job is created or deleted: only those bump it; ``created_at`` never
changes; the bulk writer ``seed``, which creates jobs without signals, bumps it
itself), ``job:<id>`` (a job's detail and the membership of its application
list), ``categories``, ``skills`` (names shown in job representations),
``applications:user:<id>`` (the application list of a worker or of a job's
client), ``saved:user:<id>``.

Row scopes (docs/cache.md, "Coarse scopes and row scopes"): a list names ``job:<id>`` for every job
it shows (also as a job ref inside an application) and ``user:<id>`` for every
user-lite it shows; an entry is served only while those counters are unchanged.
So a new applications/accepted count (``job:<id>``) or a client's new name or
rating (``user:<id>``) retires only the entries that show that job or user.

What each GET depends on is declared on its handler in jobs/views.py
(``@cached_response``); this module says what a change to a model touches.

Counter updates made with ``update()`` by the services bump their scopes
themselves: ``job_counter_scopes`` when only a count changed (apply; accept that
leaves the job open), ``job_scopes`` when the job's status changed too.
"""
from core.signals import track

from .models import Application, Category, Job, SavedJob

JOBS = "jobs"
JOB_SET = "jobs:set"
CATEGORIES = "categories"


def job_scope(job_id) -> str:
    return f"job:{job_id}"


def applications_scope(user_id) -> str:
    return f"applications:user:{user_id}"


def saved_scope(user_id) -> str:
    return f"saved:user:{user_id}"


def job_scopes(job: Job):
    """Any job save: membership/order of filtered job lists may change (status,
    rate, title...), and the job's own row; a new or deleted job also changes the
    plain list (``core.signals`` sets ``_cache_created``/``_cache_deleted``)."""
    scopes = [JOBS, job_scope(job.pk)]
    if getattr(job, "_cache_created", False) or getattr(job, "_cache_deleted", False):
        scopes.append(JOB_SET)
    return scopes


def job_counter_scopes(job: Job):
    """A counter of the job changed (``update()``), nothing that filters or orders a
    job list: the entries that show the job, only."""
    return [job_scope(job.pk)]


def category_scopes(category: Category):
    return [CATEGORIES]


def application_scopes(app: Application):
    # The job's application list, and both sides' application lists.
    return [job_scope(app.job_id), applications_scope(app.worker_id), applications_scope(app.job.client_id)]


def saved_job_scopes(saved: SavedJob):
    return [saved_scope(saved.user_id)]


track(Job, job_scopes)
track(Category, category_scopes)
track(Application, application_scopes)
track(SavedJob, saved_job_scopes)
