"""Views of the jobs app: categories, jobs, applications and saved jobs.

Thin by design: each view picks a named queryset method and a serializer, checks
permission and calls a service in ``jobs.services``. Every GET is wrapped with
``core.cache.cached_response`` (after DRF's authentication and permission checks);
the scopes it depends on are in ``jobs.cache``.

Who may do what on a job that exists:
- Jobs are public, so the owner-only writes (PATCH, DELETE, start, complete) answer
  ``403`` to any other signed-in user: nothing is revealed that GET does not show.
- A job's application list and an application are private: a caller who may not
  see them gets ``404``, the same as for an id that does not exist.
"""
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response

from core.cache import cached_response
from core.throttling import UserScopedThrottle

from . import services
from .cache import (
    category_list_scopes,
    job_applications_rows,
    job_applications_scopes,
    job_detail_rows,
    job_detail_scopes,
    job_list_rows,
    job_list_scopes,
    my_applications_rows,
    my_applications_scopes,
    saved_jobs_rows,
    saved_jobs_scopes,
)
from .filters import ApplicationFilter, JobFilter
from .models import Application, Category, Job
from .serializers import (
    ApplicationSerializer,
    ApplyInputSerializer,
    CategorySerializer,
    JobSerializer,
    JobWriteSerializer,
    SavedJobSerializer,
    SaveResultSerializer,
)


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


class ListOnlyFilterMixin:
    """Query-string filters apply to the list only: ``?status=`` on a detail URL or
    an action must not hide the object (nor turn into a 400)."""

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)


@extend_schema_view(list=extend_schema(summary="All categories"))
class CategoryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """GET /categories/: anyone. Budget: COUNT + page = 2 (+1 with a token)."""

    serializer_class = CategorySerializer
    permission_classes = [AllowAny]
    filter_backends: list = []

    def get_queryset(self):
        return Category.objects.for_list()

    @cached_response(category_list_scopes)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="Jobs, newest first", responses=JobSerializer),
    create=extend_schema(summary="Post a job (clients)", request=JobWriteSerializer, responses={201: JobSerializer}),
    retrieve=extend_schema(summary="One job", responses=JobSerializer),
    partial_update=extend_schema(
        summary="Edit a job while open (owner)", request=JobWriteSerializer, responses=JobSerializer
    ),
    destroy=extend_schema(summary="Cancel a job (owner)", responses={204: None}),
)
class JobViewSet(ListOnlyFilterMixin, viewsets.GenericViewSet):
    """Jobs. Budgets (queries, MISS; "ids" is the row-scope query of the cache,
    core/cache.py): list = ids + COUNT + page + skills = 4 anonymous, 5 with a
    token; detail = ids + row + skills = 3, 4 with a token; a job's applications
    = token + ids + job + COUNT + page = 5. A HIT of a public GET costs 0 (1 with a
    token).
    """

    serializer_class = JobSerializer
    filterset_class = JobFilter
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    throttle_scope = "applications"  # used by the apply action's throttle only

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

    def get_queryset(self):
        if self.action == "list":
            return Job.objects.for_list()
        if self.action == "applications":
            # Only the owner (or staff) sees a job's applications; others get a 404.
            return Job.objects.applications_visible_to(self.request.user)
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
        # Re-read: the answer shows the job as the next GET will (F() counters included).
        return Response(JobSerializer(Job.objects.reread(job)).data, status=status_code)

    @cached_response(job_list_scopes, rows=job_list_rows)
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(JobSerializer(page, many=True).data)

    @cached_response(job_detail_scopes, rows=job_detail_rows)
    def retrieve(self, request, *args, **kwargs):
        return Response(JobSerializer(self.get_object()).data)

    def create(self, request, *args, **kwargs):
        serializer = JobWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.job_create(client=request.user, data=serializer.validated_data)
        return self._job_response(job, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        """Owner only (403 for anyone else: jobs are public); only while open (409)."""
        job = self._owned_job()
        serializer = JobWriteSerializer(job, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        job = services.job_update(job=job, by=request.user, data=serializer.validated_data)
        return self._job_response(job)

    def destroy(self, request, *args, **kwargs):
        """Cancels the job (owner; 403 for others); 409 unless open or filled."""
        services.job_cancel(job=self._owned_job(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Apply to a job (workers)", request=ApplyInputSerializer, responses={201: ApplicationSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Throttled per user (scope ``applications``). Twice or a job that is not open: 409."""
        job = self.get_object()
        body = ApplyInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        application = services.application_create(
            job=job, worker=request.user, cover_note=body.validated_data["cover_note"]
        )
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="A job's applications (owner or staff)", responses=ApplicationSerializer(many=True))
    @action(detail=True, methods=["get"])
    @cached_response(job_applications_scopes, rows=job_applications_rows, private=True)
    def applications(self, request, pk=None):
        """Newest first. 404 for anyone but the owner and staff (checked before the
        cache is read: an entry is keyed by caller and only stored for a 200)."""
        job = self.get_object()
        page = self.paginate_queryset(Application.objects.for_list().for_job(job))
        return self.get_paginated_response(ApplicationSerializer(page, many=True).data)

    @extend_schema(
        summary="Save a job / forget a saved job",
        request=None,
        responses={200: SaveResultSerializer, 201: SaveResultSerializer, 204: None},
    )
    @action(detail=True, methods=["post", "delete"], url_path="save")
    def save_job(self, request, pk=None):
        """POST: 201 the first time, 200 after. DELETE: 204 whether or not it was saved
        (idempotent: the end state is the same)."""
        job = self.get_object()
        if request.method == "DELETE":
            services.job_unsave(job=job, user=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        saved, created = services.job_save(job=job, user=request.user)
        data = SaveResultSerializer({"job": job, "saved_at": saved.created_at}).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(summary="Start a filled job (owner)", request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """``filled`` -> ``in_progress``; 403 for non-owners, 409 from any other state."""
        return self._job_response(services.job_start(job=self._owned_job(), by=request.user))

    @extend_schema(summary="Complete a job in progress (owner)", request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """``in_progress`` -> ``completed``; 403 for non-owners, 409 from any other state."""
        return self._job_response(services.job_complete(job=self._owned_job(), by=request.user))


@extend_schema_view(list=extend_schema(summary="The caller's applications (worker) or those to their jobs (client)"))
class ApplicationViewSet(ListOnlyFilterMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Applications. The list is the caller's own applications (worker) and those to
    the caller's jobs (client); staff see theirs only, like anyone (the private cache
    entry of a list is retired by ``applications:user:<id>``, which only the two
    parties' changes bump). List budget (MISS): token + ids + COUNT + page = 4.
    accept/reject are for the job's client, withdraw for the worker; anyone else 404."""

    serializer_class = ApplicationSerializer
    filterset_class = ApplicationFilter
    permission_classes = [IsAuthenticated]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        user = self.request.user
        if self.action in ("accept", "reject"):
            return Application.objects.to_jobs_of(user)
        if self.action == "withdraw":
            return Application.objects.made_by(user)
        return Application.objects.for_list().visible_to(user)

    @cached_response(my_applications_scopes, rows=my_applications_rows, private=True)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _transition(self, service) -> Response:
        application = service(application=self.get_object(), by=self.request.user)
        return Response(ApplicationSerializer(application).data)

    @extend_schema(summary="Accept a pending application (job owner)", request=None, responses=ApplicationSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """409 when not pending, the job is not open, or it is full."""
        return self._transition(services.application_accept)

    @extend_schema(summary="Reject a pending application (job owner)", request=None, responses=ApplicationSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._transition(services.application_reject)

    @extend_schema(summary="Withdraw a pending application (the worker)", request=None, responses=ApplicationSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        return self._transition(services.application_withdraw)


class SavedJobListView(ListAPIView):
    """GET /users/me/saved-jobs/: the caller's saved jobs, newest saved first.
    Budget (MISS): token + ids + COUNT + page + skills = 5."""

    serializer_class = SavedJobSerializer
    permission_classes = [IsAuthenticated]
    filter_backends: list = []

    def get_queryset(self):
        return Job.objects.saved_by(self.request.user)

    @extend_schema(summary="The caller's saved jobs")
    @cached_response(saved_jobs_scopes, rows=saved_jobs_rows, private=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
