"""The data the cross-process cache tests run on: users of each role with API
tokens, jobs with applications and saved jobs, made with the factories and
committed (the tests use ``transaction=True``, so gunicorn sees them)."""
import random
from datetime import timedelta

from django.utils import timezone
from rest_framework.authtoken.models import Token

from jobs.models import Job
from tests.accounts.factories import ClientUserFactory, SkillFactory, StaffUserFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory, SavedJobFactory


def token(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


class World:
    """The data, created with factories and committed; users and their tokens."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.category = CategoryFactory()
        self.skills = [SkillFactory(name=f"Skill {n}") for n in range(3)]
        self.clients = [ClientUserFactory() for _ in range(3)]
        self.workers = [WorkerUserFactory() for _ in range(6)]
        self.staff = StaffUserFactory()
        self.tokens = {u.pk: token(u) for u in (*self.clients, *self.workers, self.staff)}
        for client in self.clients:
            for _ in range(3):
                # Shifts that have begun: once filled they may be started and completed
                # at once (jobs.services: start from 30 minutes before, complete after the start).
                job = JobFactory(client=client, category=self.category, workers_needed=rng.choice([1, 2]),
                                 skills=rng.sample(self.skills, 2), start_at=timezone.now() - timedelta(minutes=5))
                for worker in rng.sample(self.workers, 2):
                    ApplicationFactory(job=job, worker=worker)
                    Job.objects.filter(pk=job.pk).update(applications_count=job.applications_count + 1)
                    job.applications_count += 1
                SavedJobFactory(job=job, user=rng.choice(self.workers))

    def tok(self, user_id) -> str:
        return self.tokens[user_id]
