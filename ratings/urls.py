"""Review URLs (docs/API.md): /reviews/, /users/{id}/reviews/, /users/{id}/reviews-given/."""
from django.urls import path

from .views import ReviewViewSet, UserReviewsGivenView, UserReviewsReceivedView

urlpatterns = [
    path("reviews/", ReviewViewSet.as_view({"get": "list", "post": "create"}), name="review-list"),
    path("users/<id:pk>/reviews/", UserReviewsReceivedView.as_view(), name="user-reviews"),
    path("users/<id:pk>/reviews-given/", UserReviewsGivenView.as_view(), name="user-reviews-given"),
]
