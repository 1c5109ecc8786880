"""Serializers of the accounts app. ``UserLiteSerializer`` is the PublicUser-lite
shape every other app embeds (id, names, rating_avg): it reads only columns of
the user row, so a ``select_related`` of the user is all a list needs."""
from rest_framework import serializers

from .models import User


class UserLiteSerializer(serializers.ModelSerializer):
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "first_name", "last_name", "rating_avg"]
        read_only_fields = fields
