"""A cached list's total, kept beside its entries: the paginator's capped COUNT
under the list's coarse scope versions (docs/cache.md, "Counts").

Which rows a list holds changes only with its coarse scopes (a membership change
bumps one; that is what makes its entries safe), and so does how many. So on a
miss the total is looked up under the same coarse versions as the entry key, and
counted (then stored) only when absent: a miss caused by a row scope (a job on
the page edited) or by another page of the same list skips the COUNT, which
reads up to ``count_cap`` + 1 index entries however the page is small.

The key: release, resource, caller, the coarse scope names and versions, and the
query parameters the view's FilterSet may read (not ``page``/``per_page``, which
do not change the total, nor parameters no filter reads). Only for a list whose
rows are the view's own ``filter_queryset(get_queryset())`` (a default ``Rows``):
its total depends on nothing else of the request. Never stale, by the order of
the miss: the versions are read before the COUNT runs, so a count stored under a
version nobody bumped since is one of that version's rows."""
from __future__ import annotations

from django.conf import settings

from .backends import backend
from .keys import digest, path_identity, release
from .outage import health

COUNT_PREFIX = "n:"


def filter_params(view, params) -> list:
    """The query's (name, values) that a filter of the view's FilterSet may read:
    its name, or its name with a suffix (a range's ``_min``/``_max``). Sorted."""
    filterset_class = getattr(view, "filterset_class", None)
    if filterset_class is None or not getattr(view, "filter_backends", None):
        return []
    names = tuple(filterset_class.base_filters)
    return [(key, values) for key, values in sorted(params.lists()) if key.startswith(names)]


class CountMemo:
    """The total of one list under the versions read on this miss (see above)."""

    @classmethod
    def for_request(cls, endpoint: str, view, request, caller: str, versions: dict[str, int]) -> CountMemo:
        names = sorted(versions)
        material = repr(("count", release(), path_identity(request), filter_params(view, request.query_params),
                         caller, names))
        return cls(f"{COUNT_PREFIX}{endpoint}:{digest(material, [str(versions[n]) for n in names])}")

    def get(self) -> tuple[int, bool] | None:
        """(count, capped), or None when absent or unreadable (then count it)."""
        try:
            value = backend().get(self.key)
        except Exception as exc:  # noqa: BLE001 - the database answers
            health.failed("read", exc)
            return None
        if value is None:
            return None
        count, _, capped = bytes(value).decode().partition(":")
        return int(count), capped == "1"

    def __init__(self, key: str):
        self.key = key
        self.pending: tuple[int, bool] | None = None

    def put(self, count: int, capped: bool) -> None:
        """Kept until the response's entry is stored (``flush``): a list answered
        with a 404 (a user that does not exist) or any non-200 leaves no count."""
        self.pending = (count, capped)

    def flush(self) -> None:
        if self.pending is None:
            return
        count, capped = self.pending
        self.pending = None
        try:
            backend().put(self.key, f"{count}:{int(capped)}".encode(), settings.RESPONSE_CACHE_TTL)
        except Exception as exc:  # noqa: BLE001
            health.failed("write", exc)


def arm(request, memo: CountMemo | None) -> None:
    """Hand the memo to the paginator of this request (core.envelope)."""
    getattr(request, "_request", request).cache_count = memo


def current(request) -> CountMemo | None:
    return getattr(getattr(request, "_request", request), "cache_count", None)
