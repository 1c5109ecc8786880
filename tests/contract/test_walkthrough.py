"""The README's walkthrough runs as written: scripts/walkthrough.sh (curl) against a
live server registers a client and a worker, posts, applies, accepts, starts,
completes, pays and replays the payment, confirms, and both sides review."""
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.jobs.factories import CategoryFactory
from tests.prerequisites import needs

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "walkthrough.sh"


@needs(shutil.which("curl") is not None, "needs curl")
@pytest.mark.django_db(transaction=True)
def test_walkthrough_script_runs_against_a_live_server(short_lived_connections, live_server):
    from accounts.models import User
    from jobs.models import Job
    from payments.models import Payment
    from ratings.models import Review

    CategoryFactory(name="Hospitality", slug="hospitality")
    result = subprocess.run(["bash", str(SCRIPT), live_server.url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "walkthrough done" in result.stdout
    assert "payment" in result.stdout and "succeeded" in result.stdout
    # What the walk did is in the database: one completed job, one payment (the
    # replay made none), a review in each direction.
    job = Job.objects.get()
    assert job.status == "completed"
    assert Payment.objects.filter(job=job).count() == 1
    assert Review.objects.filter(job=job).count() == 2
    assert User.objects.count() == 2
