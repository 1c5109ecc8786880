"""Cache scopes of the jobs app, and what a change to its models touches.

Scopes: ``jobs`` (every job list, saved-job lists included), ``job:<id>`` (a job's
detail and its application list), ``categories``, ``applications:user:<id>``
(the application list of a worker or of a job's client), ``saved:user:<id>``.
"""
from accounts.cache import SKILLS, USERS
from core.signals import track

from .models import Application, Category, Job, SavedJob

JOBS = "jobs"
CATEGORIES = "categories"


def job_scope(job_id) -> str:
    return f"job:{job_id}"


def applications_scope(user_id) -> str:
    return f"applications:user:{user_id}"


def saved_scope(user_id) -> str:
    return f"saved:user:{user_id}"


def job_scopes(job: Job):
    return [JOBS, job_scope(job.pk)]


def category_scopes(category: Category):
    return [CATEGORIES]


def application_scopes(app: Application):
    # The job's counters, its application list, and both sides' application lists.
    return [job_scope(app.job_id), applications_scope(app.worker_id), applications_scope(app.job.client_id)]


def saved_job_scopes(saved: SavedJob):
    return [saved_scope(saved.user_id)]


# What each GET depends on (used by the views' @cached_response).
def job_list_scopes(view, request, **kwargs):
    return [JOBS, USERS, CATEGORIES, SKILLS]


def job_detail_scopes(view, request, pk=None, **kwargs):
    return [job_scope(pk), USERS, CATEGORIES, SKILLS]


def job_applications_scopes(view, request, pk=None, **kwargs):
    return [job_scope(pk), USERS]


def category_list_scopes(view, request, **kwargs):
    return [CATEGORIES]


def my_applications_scopes(view, request, **kwargs):
    return [applications_scope(request.user.pk), JOBS, USERS]


def saved_jobs_scopes(view, request, **kwargs):
    return [saved_scope(request.user.pk), JOBS, USERS, CATEGORIES, SKILLS]


track(Job, job_scopes)
track(Category, category_scopes)
track(Application, application_scopes)
track(SavedJob, saved_job_scopes)
