"""Domain errors: how a service says that a write breaks a marketplace rule.

The services of the apps (jobs, payments, ratings) raise these and nothing
HTTP-shaped, so each rule is written once, in its service, and every road to it
reports it the same way:

- the API maps them to the envelope (``core.envelope.envelope_exception_handler``):
  ``Invalid`` -> 400 (under ``field`` in ``details`` when the error names one),
  ``NotAllowed`` -> 403, ``Missing`` -> 404, ``StateConflict`` -> 409,
  ``Unavailable`` -> 503; the envelope's ``message`` is the error's message and a
  409's ``details`` carry the error's ``details`` (e.g. the existing payment);
- the admin shows them as a form error (an edit) or an error message (an action).

Every message is a sentence a client can show to a person.
"""
from __future__ import annotations

from typing import Any


class RuleError(Exception):
    """A write refused by a rule. ``message``: what to show; ``field``: the input
    field at fault, if one is; ``details``: machine-readable facts about the refusal."""

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class Invalid(RuleError):
    """The request can never succeed as sent (API: 400)."""


class NotAllowed(RuleError):
    """The caller may not do this (API: 403)."""


class Missing(RuleError):
    """The caller cannot see the object the request names (API: 404)."""


class StateConflict(RuleError):
    """Well formed, but the current state does not allow it (API: 409)."""


class Unavailable(RuleError):
    """A service the write depends on is down; nothing changed (API: 503)."""
