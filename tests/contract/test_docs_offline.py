"""/api/docs/ (Swagger UI) and /api/redoc/ use only assets this application serves
(drf-spectacular-sidecar, pinned in requirements.txt): no CDN, no web fonts, no
online validator, so the docs work without internet."""
import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)
ANY_URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.I)


def _page(path):
    response = Client().get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_page_references_no_external_host(path, settings):
    html = _page(path)
    # Every host name that appears anywhere in the page, in any attribute or script.
    assert ANY_URL.findall(html) == []
    assets = URL_ATTR.findall(html)
    assert assets, "the page loads its UI from somewhere"
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    static = [a for a in assets if a.startswith(static_url)]
    assert static, assets
    for asset in static:
        relative = asset.split("?")[0][len(static_url):]
        assert finders.find(relative), f"{asset} is not a local static file"


@pytest.mark.django_db
def test_swagger_ui_has_no_online_validator():
    assert '"validatorUrl": null' in _page("/api/docs/")
