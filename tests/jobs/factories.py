from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from django.utils.text import slugify

from jobs.models import Application, Category, Job, SavedJob
from tests.accounts.factories import ClientUserFactory, WorkerUserFactory


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job
        skip_postgeneration_save = True

    client = factory.SubFactory(ClientUserFactory)
    title = factory.Sequence(lambda n: f"Shift {n}")
    description = "Help needed."
    category = factory.SubFactory(CategoryFactory)
    city = "Berlin"
    rate = Decimal("20.00")
    currency = "EUR"
    workers_needed = 1
    start_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=2))
    end_at = factory.LazyAttribute(lambda o: o.start_at + timedelta(hours=8))

    @factory.post_generation
    def skills(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.skills.set(extracted)


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    job = factory.SubFactory(JobFactory)
    worker = factory.SubFactory(WorkerUserFactory)
    cover_note = "I can do it."


class SavedJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SavedJob

    job = factory.SubFactory(JobFactory)
    user = factory.SubFactory(WorkerUserFactory)
