"""Serializers of the jobs app. ``JobRefSerializer`` is the (id, title, status)
shape that applications, payments and reviews embed."""
from rest_framework import serializers

from .models import Job


class JobRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "title", "status"]
        read_only_fields = fields
