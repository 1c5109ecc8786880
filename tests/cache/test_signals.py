"""The invalidation receivers (core/signals.py) on the real models: saves, deletes
(cascades included), every many-to-many action from both sides, and rollbacks.
Transactions are real (``transaction=True``) so the bumps run in on_commit as in
production. Expected scopes come from each app's cache.py (``scopes_for``)."""
import pytest
from django.db import transaction
from django.db.models.signals import post_save

from accounts.models import Skill
from core import cache as cache_layer
from core import signals
from jobs.models import Category, Job
from tests.accounts.factories import SkillFactory, UserFactory, WorkerUserFactory
from tests.cache.helpers import healthy_cache  # noqa: F401
from tests.jobs.factories import ApplicationFactory, JobFactory, SavedJobFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("healthy_cache")]


class Versions:
    """Snapshot of scope versions; ``bumped()`` tells which of them moved."""

    def __init__(self, scopes):
        self.before = cache_layer.get_versions(scopes)

    def bumped(self) -> set[str]:
        after = cache_layer.get_versions(self.before)
        return {s for s, v in after.items() if v != self.before[s] and s != cache_layer.GENERATION_SCOPE}


def test_every_app_model_is_tracked_with_scopes():
    tracked = set(signals.tracked_models())
    assert {Category, Job, Skill} <= tracked


def test_save_bumps_after_commit_and_rollback_bumps_nothing():
    category = Category.objects.create(name="Cleaning", slug="cleaning")
    scopes = signals.scopes_for(category)
    assert scopes, "a category change must touch some scope"
    snap = Versions(scopes)
    with transaction.atomic():
        category.name = "Cleaning and care"
        category.save()
        assert snap.bumped() == set()  # nothing before the data is visible
    assert snap.bumped() == scopes
    snap = Versions(scopes)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            category.name = "Never"
            category.save()
            raise RuntimeError("roll back")
    assert snap.bumped() == set()


def test_create_and_edit_of_a_job_bump_its_scopes():
    job = JobFactory()
    scopes = signals.scopes_for(job)
    assert f"job:{job.pk}" in scopes
    snap = Versions(scopes)
    job.title = "Renamed"
    job.save()
    assert snap.bumped() == scopes


def test_raw_saves_from_fixtures_bump_nothing():
    category = Category.objects.create(name="Raw", slug="raw")
    snap = Versions(signals.scopes_for(category))
    post_save.send(sender=Category, instance=category, created=False, raw=True, using="default")
    assert snap.bumped() == set()


def test_delete_bumps():
    saved = SavedJobFactory()
    scopes = signals.scopes_for(saved)
    snap = Versions(scopes)
    saved.delete()
    assert snap.bumped() == scopes


def test_cascaded_deletes_bump_every_deleted_row():
    job = JobFactory()
    applications = [ApplicationFactory(job=job) for _ in range(2)]
    saved = SavedJobFactory(job=job)
    expected = set(signals.scopes_for(job)) | set(signals.scopes_for(saved))
    for application in applications:
        expected |= set(signals.scopes_for(application))
    snap = Versions(expected)
    Job.objects.filter(pk=job.pk).delete()  # a queryset delete cascades too
    assert snap.bumped() == expected


def test_deleting_a_user_cascades_to_their_rows():
    worker = WorkerUserFactory()
    application = ApplicationFactory(worker=worker)
    saved = SavedJobFactory(user=worker)
    expected = (
        set(signals.scopes_for(worker))
        | set(signals.scopes_for(worker.profile))
        | set(signals.scopes_for(application))
        | set(signals.scopes_for(saved))
    )
    snap = Versions(expected)
    worker.delete()
    assert snap.bumped() == expected


@pytest.mark.parametrize("action", ["add", "remove", "set", "clear"])
def test_m2m_from_the_forward_side(action):
    python, django_skill = SkillFactory(name="Python"), SkillFactory(name="Django")
    job = JobFactory(skills=[python])
    expected = set(signals.scopes_for(job))
    snap = Versions(expected | set(signals.scopes_for(python)))
    if action == "add":
        job.skills.add(django_skill)
    elif action == "remove":
        job.skills.remove(python)
    elif action == "set":
        job.skills.set([django_skill])
    else:
        job.skills.clear()
    assert expected <= snap.bumped()


@pytest.mark.parametrize("action", ["add", "remove", "clear"])
def test_m2m_from_the_reverse_side_bumps_the_jobs(action):
    skill = SkillFactory(name="Forklift")
    linked = JobFactory(skills=[skill])
    other = JobFactory()
    target = other if action == "add" else linked
    expected = {f"job:{target.pk}"}
    untouched = {f"job:{other.pk}"} if action != "add" else {f"job:{linked.pk}"}
    snap = Versions(expected | untouched)
    if action == "add":
        skill.jobs.add(other)
    elif action == "remove":
        skill.jobs.remove(linked)
    else:
        skill.jobs.clear()  # the ids are read before the clear
    assert snap.bumped() == expected


def test_m2m_on_profiles():
    user = UserFactory()
    skill = SkillFactory(name="Welding")
    expected = set(signals.scopes_for(user.profile))
    for change in (lambda: user.profile.skills.add(skill), lambda: skill.profiles.clear()):
        snap = Versions(expected)
        change()
        assert expected <= snap.bumped()


def test_m2m_rolled_back_bumps_nothing():
    skill = SkillFactory(name="Roofing")
    job = JobFactory()
    snap = Versions(set(signals.scopes_for(job)) | set(signals.scopes_for(skill)))
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            job.skills.add(skill)
            raise RuntimeError("roll back")
    assert snap.bumped() == set()


def test_a_model_can_say_it_does_not_show_its_reverse_m2m(monkeypatch):
    """``track(Skill, ..., shows_reverse_m2m=False)``: linking a job to a skill
    then bumps the job's scopes but not the skill's (every skill-dependent list)."""
    skill = SkillFactory(name="Painting")
    job = JobFactory()
    skill_scopes = set(signals.scopes_for(skill)) - set(signals.scopes_for(job))
    assert skill_scopes
    snap = Versions(skill_scopes | set(signals.scopes_for(job)))
    monkeypatch.setattr(signals, "_hides_reverse_m2m", {Skill})
    job.skills.add(skill)
    assert snap.bumped() == set(signals.scopes_for(job))
    snap = Versions(skill_scopes | set(signals.scopes_for(job)))
    skill.jobs.remove(job)  # from the reverse side: the job still is bumped
    assert snap.bumped() == set(signals.scopes_for(job))
    # The default is the safe one: both sides.
    monkeypatch.setattr(signals, "_hides_reverse_m2m", set())
    snap = Versions(skill_scopes)
    job.skills.add(skill)
    assert snap.bumped() == skill_scopes
