"""config/gunicorn.py's post_worker_init: once a worker has loaded the application
and its URL configuration, the objects made so far are frozen (``gc.freeze``), so a
full collection no longer walks them."""
import gc
import runpy
from pathlib import Path

from django.conf import settings


def test_a_worker_freezes_what_loading_the_application_made():
    hooks = runpy.run_path(str(Path(settings.BASE_DIR) / "config" / "gunicorn.py"))
    gc.collect()
    assert gc.get_freeze_count() == 0
    tracked = len(gc.get_objects())
    try:
        hooks["post_worker_init"](None)
        frozen = gc.get_freeze_count()
        # Everything the process had made (this test process: Django, the apps,
        # the test modules) is frozen, and a collection no longer sees it.
        assert frozen >= tracked * 0.9
        assert len(gc.get_objects()) < tracked * 0.1
        # A collection leaves them frozen. (Not exactly the same count: a frozen
        # object whose last reference another thread drops is freed, as ever.)
        gc.collect()
        assert gc.get_freeze_count() >= frozen * 0.99
        assert len(gc.get_objects()) < tracked * 0.1
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
