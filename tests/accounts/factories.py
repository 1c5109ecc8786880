import factory
from django.utils.text import slugify

from accounts.models import Profile, Role, Skill, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    role = Role.WORKER
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery-9")

    @factory.post_generation
    def with_profile(obj, create, extracted, **kwargs):
        if create:
            obj.save()
            Profile.objects.get_or_create(user=obj)

    @factory.post_generation
    def skills(obj, create, extracted, **kwargs):
        """``UserFactory(skills=[skill, ...])`` sets the profile's skills."""
        if create and extracted:
            obj.profile.skills.set(extracted)

    @factory.post_generation
    def profile_fields(obj, create, extracted, **kwargs):
        """``UserFactory(profile_fields={"city": ..., "bio": ...})`` fills the profile."""
        if create and extracted:
            for name, value in extracted.items():
                setattr(obj.profile, name, value)
            obj.profile.save()


class ClientUserFactory(UserFactory):
    role = Role.CLIENT


class WorkerUserFactory(UserFactory):
    role = Role.WORKER


class StaffUserFactory(UserFactory):
    role = Role.CLIENT
    is_staff = True
    is_superuser = True


class SkillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Skill
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Skill {n}")
    slug = factory.LazyAttribute(lambda o: slugify(o.name))
