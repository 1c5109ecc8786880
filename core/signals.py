"""Cache invalidation receivers: the only signal receivers in the project.

Apps declare, in their ``cache.py``, which scopes a change to each of their models
touches, by calling ``track(Model, scopes_fn)`` from their ``AppConfig.ready``.
``scopes_fn(instance)`` returns the scope names to bump. Here, one receiver per
signal bumps them in ``transaction.on_commit`` (see ``core.cache.bump``):

- ``post_save`` and ``post_delete`` (cascaded deletes send one per row, because a
  receiver is connected, Django does not fast-delete these models);
- ``m2m_changed`` on every many-to-many of a tracked model, every action: both
  the instance's scopes and those of each related object that is tracked too;
  for ``clear``, the related ids are read in ``pre_clear``.

Writes that skip signals (``update()``, ``bulk_create``, ``bulk_update``) must call
``core.cache.bump`` with the same scopes: the service that makes them does.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db.models.signals import m2m_changed, post_delete, post_save

from .cache import bump

ScopesFn = Callable[[object], Iterable[str]]
_registry: dict[type, ScopesFn] = {}


def track(model: type, scopes_fn: ScopesFn) -> None:
    """Bump ``scopes_fn(instance)`` whenever an instance of ``model`` changes."""
    _registry[model] = scopes_fn
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


def _on_save(sender, instance, raw=False, **kwargs):
    if raw:  # fixtures: no cache to keep in step
        return
    bump(*scopes_for(instance))


def _on_delete(sender, instance, **kwargs):
    bump(*scopes_for(instance))


def _on_m2m(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action == "pre_clear":
        # post_clear gets no pk_set: remember what is about to be unlinked.
        accessor = _accessor(sender, instance, reverse)
        instance._cache_cleared_pks = set(accessor.values_list("pk", flat=True)) if accessor else set()
        return
    if not action.startswith("post_"):
        return
    scopes = scopes_for(instance)
    if action == "post_clear":
        pk_set = getattr(instance, "_cache_cleared_pks", set())
    if pk_set and model in _registry:
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
