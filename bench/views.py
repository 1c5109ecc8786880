"""The floor: a bare Django view returning fixed bytes, as large as the page it is
compared with (``?bytes=N``, the size of Shiftboard's job list page, measured by
the bench). It goes through the same middleware as every other request, so it is
the most any endpoint could do on this server."""
from functools import lru_cache

from django.http import HttpResponse

MAX_BYTES = 1_000_000


@lru_cache(maxsize=16)
def _body(size: int) -> bytes:
    filler = b'{"data":"' + b"x" * max(0, size - 11) + b'"}'
    return filler[:size]


def floor(request):
    try:
        size = min(max(int(request.GET.get("bytes", "4096")), 2), MAX_BYTES)
    except ValueError:
        size = 4096
    return HttpResponse(_body(size), content_type="application/json")
