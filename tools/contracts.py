"""The contract of every GET endpoint of the API, declared once.

For each endpoint: its query budget (anonymous and signed in, on a cache MISS and
on a HIT), whether and how its response is cached, and the index probes that
``manage.py explain_plans`` sends at scale. Everything else reads this table:

- ``tests/perf/test_contract_budgets.py`` measures every endpoint at two data
  sizes against these budgets (the same count at both sizes, equal to the table);
- ``tests/perf/test_contracts.py`` walks the URL configuration and fails when a
  GET endpoint is missing here, when an endpoint's ``@cached_response`` does not
  match its cache status, and when the README budget table differs from
  ``readme_table()``;
- ``explain_plans`` builds its probes from ``probes(targets)``.

Paths are written as in the README and docs/API.md (under ``/api/v1``, ids as
``{id}``). ``example`` is the same path with placeholders the budget test fills
from its data (``{job}``, ``{user}``, ``{payment}``), ``caller`` the role of the
signed-in caller it measures (the one allowed to read the endpoint).
"""
from __future__ import annotations

from dataclasses import dataclass

from jobs.models import ApplicationStatus, JobStatus

API_PREFIX = "/api/v1"
PUBLIC, PRIVATE, UNCACHED = "public", "private", "uncached"


@dataclass(frozen=True)
class Budget:
    """Queries per request: ``miss`` (first request, cache MISS) and ``hit`` (the
    same request again)."""

    miss: int
    hit: int


@dataclass(frozen=True)
class Probe:
    """One GET that ``explain_plans`` EXPLAINs at scale: ``path`` with
    placeholders filled from its targets (``{client}``, ``{city}``...), sent as
    the user ``as_user`` names (a target key) or anonymously."""

    label: str
    path: str
    as_user: str | None = None


@dataclass(frozen=True)
class Endpoint:
    path: str  # "/jobs/{id}/" (README, docs/API.md)
    route: str  # the URL pattern: "api/v1/jobs/<id:pk>/"
    cache: str  # PUBLIC (one entry for everyone), PRIVATE (per caller) or UNCACHED
    signed_in: Budget
    anonymous: Budget | None = None  # None: anonymous callers are refused
    example: str = ""  # path with {job}/{user}/{payment}; default: path
    caller: str = "worker"  # the signed-in caller the budget test uses
    probes: tuple[Probe, ...] = ()
    why_uncached: str = ""
    why_no_probe: str = ""

    @property
    def example_path(self) -> str:
        return API_PREFIX + (self.example or self.path)


def _job_list_probes() -> tuple[Probe, ...]:
    j = "/api/v1/jobs/"
    probes = [
        Probe("jobs newest (default)", j),
        Probe("jobs status=open newest", f"{j}?status=open"),
        Probe("jobs category=id", j + "?category={category_id}"),
        Probe("jobs category=slug", j + "?category={category_slug}"),
        Probe("jobs skill", j + "?skill={skill_slug}"),
        Probe("jobs city", j + "?city={city}"),
        Probe("jobs rate range", j + "?min_rate={min_rate}&max_rate={max_rate}"),
        Probe("jobs client", j + "?client={client}"),
        Probe("jobs open + category", j + "?status=open&category={category_id}"),
        Probe("jobs open + skill", j + "?status=open&skill={skill_slug}"),
        Probe("jobs open + city", j + "?status=open&city={city}"),
        Probe("jobs deep page", j + "?page={deep_page}"),
        # A word of the most common title (many matches) and one that matches
        # nothing (without an index, the worst case: every row read to find none).
        Probe("jobs search (common word)", j + "?search={common_word}"),
        Probe("jobs search (no match)", f"{j}?search=xylophone"),
        Probe("jobs open + search", j + "?status=open&search={common_word}"),
    ]
    # Every other status: rare ones are where a scan of the newest-first index,
    # filtering as it goes, would read the most rows.
    probes += [Probe(f"jobs status={s}", f"{j}?status={s}") for s in JobStatus.values if s != JobStatus.OPEN]
    for ordering in ("created_at", "-created_at", "rate", "-rate", "start_at", "-start_at"):
        probes.append(Probe(f"jobs ordering={ordering}", f"{j}?ordering={ordering}"))
        probes.append(Probe(f"jobs open ordering={ordering}", f"{j}?status=open&ordering={ordering}"))
    return tuple(probes)


def _application_list_probes() -> tuple[Probe, ...]:
    probes = [
        Probe("applications (worker)", "/api/v1/applications/", "worker"),
        Probe("applications (client)", "/api/v1/applications/", "client"),
    ]
    for s in ApplicationStatus.values:
        probes.append(Probe(f"applications (worker) {s}", f"/api/v1/applications/?status={s}", "worker"))
        probes.append(Probe(f"applications (client) {s}", f"/api/v1/applications/?status={s}", "client"))
    return tuple(probes)


PUBLIC_LIST = Budget(3, 0), Budget(4, 1)  # ids + COUNT + page (+ token)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "/jobs/", "api/v1/jobs/", PUBLIC,
        anonymous=PUBLIC_LIST[0], signed_in=PUBLIC_LIST[1],  # the page carries its jobs' skills
        probes=_job_list_probes(),
    ),
    Endpoint(
        "/jobs/{id}/", "api/v1/jobs/<id:pk>/", PUBLIC,
        anonymous=Budget(2, 0), signed_in=Budget(3, 1), example="/jobs/{job}/",  # ids + the row with its skills
        probes=(Probe("job detail", "/api/v1/jobs/{busiest_job}/"),),
    ),
    Endpoint(
        "/categories/", "api/v1/categories/", PUBLIC,
        anonymous=Budget(2, 0), signed_in=Budget(3, 1),  # COUNT + page
        probes=(Probe("categories", "/api/v1/categories/"),),
    ),
    Endpoint(
        "/skills/", "api/v1/skills/", PUBLIC,
        anonymous=Budget(2, 0), signed_in=Budget(3, 1),
        probes=(Probe("skills", "/api/v1/skills/"),),
    ),
    Endpoint(
        "/users/{id}/", "api/v1/users/<id:pk>/", PUBLIC,
        anonymous=Budget(1, 0), signed_in=Budget(2, 1), example="/users/{user}/",  # the user with its skills
        probes=(Probe("public user", "/api/v1/users/{client}/"),),
    ),
    Endpoint(
        "/users/{id}/reviews/", "api/v1/users/<id:pk>/reviews/", PUBLIC,
        anonymous=PUBLIC_LIST[0], signed_in=PUBLIC_LIST[1], example="/users/{user}/reviews/",
        probes=(Probe("reviews received", "/api/v1/users/{reviewed}/reviews/"),),
    ),
    Endpoint(
        "/users/{id}/reviews-given/", "api/v1/users/<id:pk>/reviews-given/", PUBLIC,
        anonymous=PUBLIC_LIST[0], signed_in=PUBLIC_LIST[1], example="/users/{user}/reviews-given/",
        probes=(Probe("reviews given", "/api/v1/users/{reviewer}/reviews-given/"),),
    ),
    Endpoint(
        "/reviews/", "api/v1/reviews/", PUBLIC,
        anonymous=PUBLIC_LIST[0], signed_in=PUBLIC_LIST[1],
        probes=(
            Probe("reviews ?reviewed=", "/api/v1/reviews/?reviewed={reviewed}"),
            Probe("reviews ?reviewer=", "/api/v1/reviews/?reviewer={reviewer}"),
            Probe("reviews ?job=", "/api/v1/reviews/?job={review_job}"),
            Probe("reviews (all)", "/api/v1/reviews/"),
        ),
    ),
    Endpoint(
        "/users/me/", "api/v1/users/me/", PRIVATE, signed_in=Budget(3, 1),  # token + user + skills
        probes=(Probe("me", "/api/v1/users/me/", "worker"),),
    ),
    Endpoint(
        "/users/me/balance/", "api/v1/users/me/balance/", PRIVATE, signed_in=Budget(2, 1),  # token + one aggregate
        probes=(Probe("balance", "/api/v1/users/me/balance/", "recipient"),),
    ),
    Endpoint(
        "/users/me/saved-jobs/", "api/v1/users/me/saved-jobs/", PRIVATE,
        signed_in=Budget(5, 1),  # token + ids + COUNT + page + skills
        probes=(Probe("saved jobs", "/api/v1/users/me/saved-jobs/", "saver"),),
    ),
    Endpoint(
        "/applications/", "api/v1/applications/", PRIVATE, signed_in=Budget(4, 1),  # token + ids + COUNT + page
        probes=_application_list_probes(),
    ),
    Endpoint(
        "/payments/", "api/v1/payments/", PRIVATE, signed_in=Budget(4, 1), caller="client",
        probes=(
            Probe("payments (payer side)", "/api/v1/payments/", "payer"),
            Probe("payments (recipient side)", "/api/v1/payments/", "recipient"),
            Probe("payments by status", "/api/v1/payments/?status=succeeded", "payer"),
            Probe("payments (staff: all)", "/api/v1/payments/", "staff"),
        ),
    ),
    Endpoint(
        "/users/{id}/payments/", "api/v1/users/<id:pk>/payments/", PRIVATE,
        signed_in=Budget(4, 1), example="/users/{user}/payments/",
        probes=(Probe("user payments (self)", "/api/v1/users/{recipient}/payments/", "recipient"),),
    ),
    Endpoint(
        "/jobs/{id}/applications/", "api/v1/jobs/<id:pk>/applications/", PRIVATE,
        signed_in=Budget(5, 1), example="/jobs/{job}/applications/", caller="client",  # token + ids + job + COUNT + page
        probes=(Probe("job applications (owner)", "/api/v1/jobs/{busiest_job}/applications/", "busiest_job_owner"),),
    ),
    Endpoint(
        "/payments/{id}/", "api/v1/payments/<id:pk>/", PRIVATE,
        signed_in=Budget(3, 1), example="/payments/{payment}/", caller="client",  # token + ids + row
        probes=(Probe("payment detail", "/api/v1/payments/{payment_of_payer}/", "payer"),),
    ),
    Endpoint(
        "/health/", "api/v1/health/", UNCACHED,
        anonymous=Budget(1, 1), signed_in=Budget(1, 1),  # SELECT 1; no authentication
        why_uncached="it reports the database and the cache themselves",
        why_no_probe="reads no table",
    ),
)

BY_PATH = {e.path: e for e in ENDPOINTS}
BY_ROUTE = {e.route: e for e in ENDPOINTS}


def probes(targets: dict) -> list[tuple[str, str, object]]:
    """Every probe of every endpoint as (label, path, user id or None), its
    placeholders filled from ``targets``; a probe whose user target is empty (no
    staff user loaded) is left out."""
    out = []
    for endpoint in ENDPOINTS:
        for probe in endpoint.probes:
            user = targets.get(probe.as_user) if probe.as_user else None
            if probe.as_user and not user:
                continue
            out.append((probe.label, probe.path.format(**targets), user))
    return out


def _cell(budget: Budget | None) -> str:
    return "—" if budget is None else f"{budget.miss} / {budget.hit}"


def readme_table() -> str:
    """The README's "Query budgets" table (checked by tests/perf/test_contracts.py)."""
    lines = [
        "| endpoint | cache | anonymous MISS / HIT | with a token MISS / HIT |",
        "|---|---|---|---|",
    ]
    for e in ENDPOINTS:
        lines.append(f"| `GET {e.path}` | {e.cache} | {_cell(e.anonymous)} | {_cell(e.signed_in)} |")
    return "\n".join(lines)



def miss_budget(path: str, *, signed_in: bool) -> int:
    """The MISS budget of the endpoint ``path`` (hand-written budget tests use it)."""
    endpoint = BY_PATH[path]
    budget = endpoint.signed_in if signed_in else endpoint.anonymous
    if budget is None:
        raise ValueError(f"{path} refuses anonymous callers")
    return budget.miss
