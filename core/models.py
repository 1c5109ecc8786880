"""Abstract base models shared by every app."""
from django.db import models


class TimeStampedModel(models.Model):
    """created_at / updated_at on every row, set by the database layer."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
