"""How the admin writes through the apps' services, so that a rule lives once.

- ``ServiceModelForm``: a ModelForm whose last validation step is the write
  itself, made by the app's service (``run_service``). A domain error
  (``core.rules``) becomes a form error, on its field when the form has it: a
  broken rule, or a race lost to another writer (the service locks and re-reads
  under the lock), shows on the page, never as a 500.
- ``ServiceAdminMixin``: gives the form the request (the acting staff user) and
  does not save again what the service wrote.
- ``run_service_action``: an admin action that runs a service for each selected
  row, each in its own transaction with the service's own locks, and reports each
  refusal as an error message.
- ``KeepCountedRowsMixin``: the admin does not delete a row the marketplace's
  counters, money or reviews stand on (``kept_reason``); the delete page and the
  "delete selected" action show it as protected and delete nothing.

``core`` imports no app: the apps' admin modules pass their services in.
"""
from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages

from .rules import RuleError


class ServiceModelForm(forms.ModelForm):
    """Subclasses implement ``run_service()``: make the write through the service
    and return the saved instance, or return None when this form's change has no
    rule behind it (the admin then saves as usual)."""

    request = None  # set by ServiceAdminMixin.get_form

    def run_service(self):
        raise NotImplementedError

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            saved = self.run_service()
        except RuleError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
            return
        if saved is not None:
            self.instance = saved
            self.written_by_service = True


class ServiceAdminMixin:
    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def save_model(self, request, obj, form, change):
        if not getattr(form, "written_by_service", False):
            super().save_model(request, obj, form, change)


class KeepCountedRowsMixin:
    """``kept_reason(obj)``: why ``obj`` may not be deleted, or None. Django's delete
    page and "delete selected" action refuse (listing the reasons, nothing deleted)
    when ``get_deleted_objects`` names protected objects: the kept rows join them."""

    def kept_reason(self, obj) -> str | None:
        return None

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        kept = [f"{obj}: {reason}" for obj in objs if (reason := self.kept_reason(obj))]
        return deleted, model_count, perms_needed, [*protected, *kept]


def run_service_action(
    modeladmin: admin.ModelAdmin, request, queryset, service: Callable, done: str
) -> None:
    """``service(obj, request.user)`` for each selected row (id order). Successes
    are counted in one message (``done`` names the past tense, e.g. "accepted"),
    each refusal is its own error message naming the row."""
    succeeded = 0
    for obj in queryset.order_by("pk"):
        try:
            service(obj, request.user)
        except RuleError as error:
            modeladmin.message_user(request, f"{obj}: {error.message}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", messages.SUCCESS)
