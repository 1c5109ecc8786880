"""Views of the jobs app: categories, jobs, applications and saved jobs.

Thin by design: each view picks a named queryset method and a serializer, checks
permission and calls a service in ``jobs.services``. Every GET is wrapped with
``core.cache.cached_response`` (after DRF's authentication and permission checks),
declared once there: the coarse scopes (functions below, scope names from
``jobs.cache``) and the row columns (``Rows``: read from the view's own filtered
queryset, the one the handler shows).

Who may do what on a job that exists:
- Jobs are public, so the owner-only writes (PATCH, DELETE, start, complete) answer
  ``403`` to any other signed-in user: nothing is revealed that GET does not show.
- A job's application list and an application are private: a caller who may not
  see them gets ``404``, the same as for an id that does not exist.
"""
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response

from accounts.cache import SKILLS
from core.cache import Query, Rows, cached_response, query_filters
from core.filters import ListOnlyFilterMixin, filterset_applies
from core.representation import json_accepted, lookup_values, view_page_values
from core.throttling import UserScopedThrottle

from . import services
from .cache import CATEGORIES, JOB_SET, JOBS, applications_scope, job_scope, saved_scope
from .filters import ApplicationFilter, JobFilter
from .models import Application, ApplicationStatus, Category, Job
from .serializers import (
    JOB_DETAIL_COLUMNS,
    JOB_DETAIL_ORDER,
    JOB_LIST_COLUMNS,
    ApplicationSerializer,
    ApplyInputSerializer,
    CategorySerializer,
    JobSerializer,
    JobWriteSerializer,
    SavedJobSerializer,
    SaveResultSerializer,
    job_detail_values,
    job_value_rows,
    saved_job_rows,
)

# --- what each cached GET depends on (coarse scopes: part of the key) -----------

def category_list_scopes(view, request, **kwargs):
    return [CATEGORIES]


def job_list_scopes(view, request, **kwargs):
    """The plain list (no filter or ordering applied: only ``page``/``per_page``,
    or parameters the list does not read) hangs on ``jobs:set``: an edit or a
    status change of a job leaves its membership and order alone (and retires it
    through the row scope ``job:<id>`` when the job is on the page)."""
    if not query_filters(request):
        return [JOB_SET, CATEGORIES, SKILLS]
    return [JOBS, CATEGORIES, SKILLS]


def job_detail_scopes(view, request, pk=None, **kwargs):
    return [job_scope(pk), CATEGORIES, SKILLS]


def job_applications_scopes(view, request, pk=None, **kwargs):
    return [job_scope(pk)]


def my_applications_scopes(view, request, **kwargs):
    return [applications_scope(request.user.pk)]


def saved_jobs_scopes(view, request, **kwargs):
    return [saved_scope(request.user.pk), CATEGORIES, SKILLS]


# The rows each shows (row scopes, validated on every hit).
JOB_ROWS = Rows(("job", "id"), ("user", "client_id"))  # the jobs and their clients
# The plain job list: its rows change only with jobs:set (a job created or deleted),
# its order (newest first) and a job's client never change: its ids query is
# recalled under the coarse versions (Rows.remembered). Any filter: queried.
JOB_LIST_ROWS = Rows(("job", "id"), ("user", "client_id"), recall=True)


class IsClientRole(BasePermission):
    """Signed in with the ``client`` role."""

    message = "Only clients may do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_client)


class IsWorkerRole(BasePermission):
    """Signed in with the ``worker`` role."""

    message = "Only workers may do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_worker)


@extend_schema_view(list=extend_schema(summary="All categories"))
class CategoryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Every job category, by name. Anyone may read it."""

    # Budget: COUNT + page = 2 (+1 with a token).

    serializer_class = CategorySerializer
    permission_classes = [AllowAny]
    filter_backends: list = []

    def get_queryset(self):
        return Category.objects.for_list()

    @cached_response(category_list_scopes)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


def _conflict(when: str) -> OpenApiResponse:
    return OpenApiResponse(description=f"Conflict: {when}")


@extend_schema_view(
    list=extend_schema(summary="Jobs, newest first", responses=JobSerializer),
    create=extend_schema(
        summary="Post a job (clients)",
        request=JobWriteSerializer,
        responses={
            201: JobSerializer,
            400: OpenApiResponse(
                description="Invalid input (see `details`), including `start_at` in the past (more than 5 minutes "
                "behind the server's clock) and `end_at` not after `start_at`."
            ),
        },
    ),
    retrieve=extend_schema(summary="One job", responses=JobSerializer),
    partial_update=extend_schema(
        summary="Edit a job while open or filled (owner)",
        request=JobWriteSerializer,
        responses={
            200: JobSerializer,
            400: OpenApiResponse(
                description="Invalid input (see `details`), including a new `start_at` in the past, `end_at` not "
                "after `start_at`, or `workers_needed` below the number of accepted workers."
            ),
            409: _conflict(
                "the job is not open or filled, or a worker is already accepted and the body changes one of the "
                "frozen terms (`rate`, `currency`, `start_at`, `end_at`, `city`; listed in `details.frozen`)."
            ),
        },
    ),
    destroy=extend_schema(
        summary="Cancel a job (owner)",
        responses={
            204: OpenApiResponse(
                description="Cancelled: its pending applications become `cancelled`, its accepted ones "
                "`hire_cancelled`."
            ),
            409: _conflict("only an open or filled job can be cancelled."),
        },
    ),
)
class JobViewSet(ListOnlyFilterMixin, viewsets.GenericViewSet):
    """Jobs (shifts). Anyone may read them; clients post them; only the client who
    posted a job may edit, cancel, start or complete it (403 for anyone else).
    Workers apply to open jobs."""

    # Budgets (queries, MISS; "ids" is the row-scope query of the response cache):
    # list = ids + COUNT + page (its rows with their skills) = 3 anonymous, 4 with a token; detail = ids
    # + the row with its skills (a row per skill) = 2, 3 with a token; a job's
    # applications = token + ids + job + COUNT + page = 5. A HIT of a public GET
    # costs 0 (1 with a token).

    serializer_class = JobSerializer
    filterset_class = JobFilter
    lookup_value_converter = "id"  # 1..2**63-1, else 404 (core/converters.py)
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    throttle_scope = "applications"  # used by the apply action's throttle only
    # get_queryset() for the list and a job's detail is the same for every caller:
    # their reads are compiled once when no filter is given (core/representation.py,
    # static_queryset).
    static_queryset_for = ("list", "retrieve")

    permission_by_action = {
        "list": [AllowAny],
        "retrieve": [AllowAny],
        "create": [IsAuthenticated, IsClientRole],
        "apply": [IsAuthenticated, IsWorkerRole],
    }

    def get_permissions(self):
        classes = self.permission_by_action.get(self.action, [IsAuthenticated])
        return [cls() for cls in classes]

    def get_throttles(self):
        if self.action == "apply":
            return [UserScopedThrottle()]
        return []

    # The writes that find their job by id and hand it to a service, which locks
    # the row again and reads only its own columns: the job row alone (no
    # category, client or skills), one query.
    row_only_actions = ("partial_update", "destroy", "apply")

    def get_queryset(self):
        if self.action == "list":
            return Job.objects.for_list()
        if self.action == "applications":
            # Only the owner (or staff) sees a job's applications; others get a 404.
            return Job.objects.applications_visible_to(self.request.user)
        if self.action in self.row_only_actions:
            return Job.objects.all()
        return Job.objects.for_detail()

    def get_serializer_class(self):
        if self.action in ("create", "partial_update"):
            return JobWriteSerializer
        return JobSerializer

    def _owned_job(self) -> Job:
        job = self.get_object()
        if job.client_id != self.request.user.pk:
            raise PermissionDenied("Only the client who posted this job may do that.")
        return job

    def _job_response(self, job: Job, status_code=status.HTTP_200_OK) -> Response:
        # Re-read: the answer shows the job as the next GET will (F() counters
        # included), and for JSON is built as that GET builds it (retrieve): one
        # query of plain row values, without the serializer's per-field machinery.
        if json_accepted(self.request):
            found = Job.objects.filter(pk=job.pk).values_list(*JOB_DETAIL_COLUMNS).order_by(*JOB_DETAIL_ORDER)
            return Response(job_value_rows(job_detail_values(list(found)))[0], status=status_code)
        return Response(JobSerializer(Job.objects.reread(job)).data, status=status_code)

    @cached_response(job_list_scopes, rows=JOB_LIST_ROWS)
    def list(self, request, *args, **kwargs):
        """Anyone. Newest first unless ``ordering`` says otherwise; the filters
        combine (AND). An invalid filter value is a 400."""
        queryset = self.filter_queryset(self.get_queryset())
        if json_accepted(request):
            # JSON: the serializer's bytes from plain row values, without model
            # instances or the serializer's per-field machinery (core/representation.py).
            return self.get_paginated_response(
                job_value_rows(self.paginate_queryset(view_page_values(self, queryset, *JOB_LIST_COLUMNS))))
        return self.get_paginated_response(JobSerializer(self.paginate_queryset(queryset), many=True).data)

    # The job's client (a job's client never changes): recalled under the coarse
    # versions, job:<id> among them (Rows.remembered).
    @cached_response(job_detail_scopes, rows=Rows(("user", "client_id"), detail=True, recall=True))
    def retrieve(self, request, *args, **kwargs):
        """Anyone."""
        if json_accepted(request):
            # What get_object() reads (the same queryset and lookup; retrieve has no
            # object permission to check: AllowAny), as plain row values.
            # One query: the job and a row per skill (JOB_DETAIL_COLUMNS).
            rows = job_value_rows(job_detail_values(
                lookup_values(self, *JOB_DETAIL_COLUMNS, order_by=JOB_DETAIL_ORDER)))
            if not rows:
                raise Http404
            return Response(rows[0])
        return Response(JobSerializer(self.get_object()).data)

    def create(self, request, *args, **kwargs):
        """Clients only (403 for workers). The caller is the job's client and the job
        starts ``open``, whatever the body says. ``start_at`` must be in the future
        (5 minutes of clock skew are tolerated) and ``end_at`` after it (400)."""
        serializer = JobWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.job_create(client=request.user, data=serializer.validated_data)
        return self._job_response(job, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        """Only the client who posted the job (403 for anyone else), and only while it
        is open or filled (409). Once a worker is accepted, ``rate``, ``currency``,
        ``start_at``, ``end_at`` and ``city`` are frozen (changing one is a 409; the
        same value is not a change); title, description, category, skills and
        ``workers_needed`` may still change. ``workers_needed`` never drops below the
        accepted count (400); lowering it to that count fills the job, raising it on
        a filled job opens it again. A new ``start_at`` must be in the future (400)."""
        job = self._owned_job()
        serializer = JobWriteSerializer(job, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        job = services.job_update(job=job, by=request.user, data=serializer.validated_data)
        return self._job_response(job)

    def destroy(self, request, *args, **kwargs):
        """Cancels the job (status ``cancelled``): only its client (403 for anyone
        else), and only while it is open or filled (409). Pending applications to it
        become ``cancelled`` and accepted ones ``hire_cancelled``, at once in every
        application list."""
        services.job_cancel(job=self._owned_job(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Apply to a job (workers)",
        request=ApplyInputSerializer,
        responses={201: ApplicationSerializer, 409: _conflict("already applied, or the job is not open.")},
    )
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Workers only. Applying twice, or to a job that is not open, is a 409.
        Rate-limited per user (429)."""
        job = self.get_object()
        body = ApplyInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        application = services.application_create(
            job=job, worker=request.user, cover_note=body.validated_data["cover_note"]
        )
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="A job's applications (owner or staff)",
        parameters=[
            OpenApiParameter("status", str, enum=ApplicationStatus.values, description="Only applications in this status.")
        ],
        responses=ApplicationSerializer(many=True),
    )
    # No filter backends: the job filters are not this list's; ApplicationFilter is applied below.
    @action(detail=True, methods=["get"], filter_backends=[])
    # The workers on the page (the job itself is the coarse ``job:<id>``).
    @cached_response(
        job_applications_scopes,
        rows=Rows(("user", "worker_id"), source="job_applications"),
        private=True,
        query=Query(filterset=ApplicationFilter),  # applied by job_applications, not by a filter backend
    )
    def applications(self, request, pk=None):
        """Newest first. Only the client who posted the job and staff see it: 404 for
        anyone else."""
        # The 404 is decided before the response cache is read: an entry is keyed by
        # caller and only stored for a 200.
        self.get_object()
        page = self.paginate_queryset(self.job_applications())
        return self.get_paginated_response(ApplicationSerializer(page, many=True).data)

    def job_applications(self):
        """The applications to the job in the URL, newest first, with
        ``ApplicationFilter`` (an invalid value: 400): what ``applications`` shows."""
        queryset = Application.objects.for_list().for_job(self.kwargs["pk"])
        if not filterset_applies(ApplicationFilter, self.request.query_params):
            return queryset
        filterset = ApplicationFilter(self.request.query_params, queryset=queryset)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return filterset.qs

    @extend_schema(
        methods=["POST"],
        summary="Save a job for later",
        description="201 the first time, 200 when it was already saved.",
        request=None,
        responses={201: SaveResultSerializer, 200: SaveResultSerializer},
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Forget a saved job",
        description="204 whether or not it was saved: the end state is the same.",
        request=None,
        responses={204: None},
    )
    @action(detail=True, methods=["post", "delete"], url_path="save")
    def save_job(self, request, pk=None):
        """Any signed-in user. POST: 201 the first time, 200 after. DELETE: 204
        whether or not it was saved."""
        job = self.get_object()
        if request.method == "DELETE":
            services.job_unsave(job=job, user=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        saved, created = services.job_save(job=job, user=request.user)
        data = SaveResultSerializer({"job": job, "saved_at": saved.created_at}).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Start a filled job (owner)",
        request=None,
        responses={
            200: JobSerializer,
            409: _conflict(
                "the job is not filled, or it is more than 30 minutes before its `start_at` "
                "(`details.can_start_at` says from when)."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """``filled`` -> ``in_progress``, by the job's client (403 for anyone else),
        from 30 minutes before ``start_at`` on; 409 from any other state or earlier."""
        return self._job_response(services.job_start(job=self._owned_job(), by=request.user))

    @extend_schema(
        summary="Complete a job in progress (owner)",
        request=None,
        responses={
            200: JobSerializer,
            409: _conflict(
                "the job is not in progress, or its `start_at` has not come yet (`details.can_complete_at`)."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """``in_progress`` -> ``completed``, by the job's client (403 for anyone else),
        once ``start_at`` has passed; 409 from any other state or before then."""
        return self._job_response(services.job_complete(job=self._owned_job(), by=request.user))


@extend_schema_view(list=extend_schema(summary="The caller's applications (worker) or those to their jobs (client)"))
class ApplicationViewSet(ListOnlyFilterMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Applications, for signed-in users. The list holds the caller's own
    applications (worker) or those to the caller's jobs (client), newest first.
    Accept and reject are for the job's client, withdraw for the worker who applied;
    for anyone else the application does not exist (404)."""

    # Staff see their own list only, like anyone (the private cache entry of a list
    # is retired by ``applications:user:<id>``, which only the two parties' changes
    # bump). List budget (MISS): token + ids + COUNT + page = 4.

    serializer_class = ApplicationSerializer
    filterset_class = ApplicationFilter
    permission_classes = [IsAuthenticated]
    lookup_value_converter = "id"  # 1..2**63-1, else 404 (core/converters.py)

    def get_queryset(self):
        user = self.request.user
        if self.action in ("accept", "reject"):
            return Application.objects.to_jobs_of(user)
        if self.action == "withdraw":
            return Application.objects.made_by(user)
        return Application.objects.for_list().visible_to(user)

    # The jobs (refs) and workers on the page.
    @cached_response(my_applications_scopes, rows=Rows(("job", "job_id"), ("user", "worker_id")), private=True)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _transition(self, service) -> Response:
        application = service(application=self.get_object(), by=self.request.user)
        return Response(ApplicationSerializer(application).data)

    @extend_schema(
        summary="Accept a pending application (job owner)",
        request=None,
        responses={200: ApplicationSerializer, 409: _conflict("the application is not pending, or the job is not open or already full.")},
    )
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """``pending`` -> ``accepted``. When the job has all the workers it needs it
        turns ``filled``. 409 when not pending, the job is not open, or it is full."""
        return self._transition(services.application_accept)

    @extend_schema(
        summary="Reject a pending application (job owner)",
        request=None,
        responses={
            200: ApplicationSerializer,
            409: _conflict("the application is not pending (an accepted one stands: cancel the job instead)."),
        },
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """``pending`` -> ``rejected``; 409 when not pending. An accepted application
        is not rejected: the client's way out is cancelling the job."""
        return self._transition(services.application_reject)

    @extend_schema(
        summary="Withdraw a pending application (the worker)",
        request=None,
        responses={
            200: ApplicationSerializer,
            409: _conflict("the application is not pending (an accepted one stands unless the client cancels the job)."),
        },
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        """``pending`` -> ``withdrawn``; 409 when not pending. An accepted worker does
        not withdraw: the acceptance stands unless the client cancels the job."""
        return self._transition(services.application_withdraw)


class SavedJobListView(ListAPIView):
    """The caller's saved jobs, newest saved first (signed-in users)."""

    # Budget (MISS): token + ids + COUNT + page + skills = 5.

    serializer_class = SavedJobSerializer
    permission_classes = [IsAuthenticated]
    filter_backends: list = []

    def get_queryset(self):
        return Job.objects.saved_by(self.request.user)

    @extend_schema(summary="The caller's saved jobs")
    @cached_response(saved_jobs_scopes, rows=JOB_ROWS, private=True)
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        data = saved_job_rows(page) if json_accepted(request) else SavedJobSerializer(page, many=True).data
        return self.get_paginated_response(data)
