"""Cache invalidation receivers: the only signal receivers in the project.

Apps declare, in their ``cache.py``, which scopes a change to each of their models
touches, by calling ``track(Model, scopes_fn)`` from their ``AppConfig.ready``.
``scopes_fn(instance)`` returns the scope names to bump. Here, one receiver per
signal bumps them in ``transaction.on_commit`` (see ``core.cache.bump``):

- ``post_save`` and ``post_delete`` (cascaded deletes send one per row, because a
  receiver is connected, Django does not fast-delete these models);
- ``m2m_changed`` on every many-to-many of a tracked model, every action (add,
  remove, clear; from either side): both the instance's scopes and those of each
  related object that is tracked too (minus the side registered with
  ``shows_reverse_m2m=False``); for ``clear``, the related ids are read in
  ``pre_clear``.

Writes that skip signals (``update()``, ``bulk_create``, ``bulk_update``) must call
``core.cache.bump`` with the same scopes: the service that makes them does.

While ``scopes_fn`` runs, ``instance._cache_created`` says whether ``post_save``
reported a new row, and ``instance._cache_deleted`` is set for ``post_delete``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db.models.signals import m2m_changed, post_delete, post_save

from .cache import bump

ScopesFn = Callable[[object], Iterable[str]]
_registry: dict[type, ScopesFn] = {}
# Models whose representations do not show their *reverse* many-to-manys (a Skill
# does not list its jobs): linking a job to a skill then bumps the job's scopes only.
_hides_reverse_m2m: set[type] = set()


def track(model: type, scopes_fn: ScopesFn, *, shows_reverse_m2m: bool = True) -> None:
    """Bump ``scopes_fn(instance)`` whenever an instance of ``model`` changes.

    ``shows_reverse_m2m=False`` says that no representation of ``model`` shows the
    many-to-manys declared on *other* models that point at it, so adding or
    removing such a link does not need ``model``'s scopes (without it, tagging a
    job with a skill would also retire every list that depends on ``skills``)."""
    _registry[model] = scopes_fn
    if shows_reverse_m2m:
        _hides_reverse_m2m.discard(model)
    else:
        _hides_reverse_m2m.add(model)
    post_save.connect(_on_save, sender=model, dispatch_uid=f"cache-save-{model._meta.label}")
    post_delete.connect(_on_delete, sender=model, dispatch_uid=f"cache-delete-{model._meta.label}")
    for field in model._meta.many_to_many:
        through = field.remote_field.through
        m2m_changed.connect(_on_m2m, sender=through, dispatch_uid=f"cache-m2m-{through._meta.label}")


def tracked_models() -> list[type]:
    return list(_registry)


def scopes_for(instance) -> set[str]:
    fn = _registry.get(type(instance))
    return set(fn(instance)) if fn else set()


def _on_save(sender, instance, raw=False, created=False, **kwargs):
    if raw:  # fixtures: no cache to keep in step
        return
    # A scopes function may tell a new row from a changed one (jobs.cache: only a
    # new or deleted job changes the membership of the unfiltered job lists).
    instance._cache_created = created
    try:
        bump(*scopes_for(instance))
    finally:
        instance._cache_created = False


def _on_delete(sender, instance, **kwargs):
    instance._cache_deleted = True
    bump(*scopes_for(instance))


def _on_m2m(sender, instance, action, reverse, model, pk_set, **kwargs):
    # ``reverse`` is False when the change is made from the model that declares
    # the field (job.skills.add(skill)): then ``instance`` is the forward side and
    # ``model`` the reverse side; and the other way round.
    instance_needed = not (reverse and type(instance) in _hides_reverse_m2m)
    related_needed = model in _registry and not (not reverse and model in _hides_reverse_m2m)
    if action == "pre_clear":
        # post_clear gets no pk_set: remember what is about to be unlinked.
        if related_needed:
            accessor = _accessor(sender, instance, reverse)
            instance._cache_cleared_pks = set(accessor.values_list("pk", flat=True)) if accessor else set()
        return
    if not action.startswith("post_"):
        return
    scopes = scopes_for(instance) if instance_needed else set()
    if action == "post_clear":
        pk_set = getattr(instance, "_cache_cleared_pks", set())
    if pk_set and related_needed:
        for obj in model._default_manager.filter(pk__in=pk_set):
            scopes |= scopes_for(obj)
    bump(*scopes)


def _accessor(through, instance, reverse):
    """The related manager on ``instance`` that goes through ``through``."""
    for field in type(instance)._meta.get_fields():
        rel_through = None
        if field.many_to_many and not field.auto_created:
            rel_through = field.remote_field.through
        elif field.many_to_many and field.auto_created:
            rel_through = field.through if hasattr(field, "through") else field.remote_field.through
        if rel_through is through:
            name = field.name if not field.auto_created else field.get_accessor_name()
            return getattr(instance, name)
    return None
