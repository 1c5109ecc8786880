"""Regressions of what schemathesis (scripts/schemathesis.sh) found: each answered
a 500 before its fix."""
import pytest

HUGE_PAGE = "26322940399789355600707584"  # (page - 1) * per_page overflows a bigint OFFSET


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/v1/payments/", "/api/v1/users/me/saved-jobs/", "/api/v1/jobs/", "/api/v1/reviews/",
             "/api/v1/applications/"],
)
def test_a_page_number_beyond_any_offset_is_a_404(client_user, path):
    from tests.conftest import auth_client

    response = auth_client(client_user).get(f"{path}?page={HUGE_PAGE}&per_page=100")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/auth/otp/request/", "/api/v1/auth/logout/", "/api/v1/jobs/"])
def test_options_of_a_post_without_body_is_answered(client_user, path):
    from tests.conftest import auth_client

    response = auth_client(client_user).options(path)
    assert response.status_code == 200
    assert response.json()["success"] is True
