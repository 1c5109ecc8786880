"""The OpenAPI document says what the wire says (docs/API.md is the guide to it).

drf-spectacular describes bare serializers; our renderer wraps every body in the
envelope (core/envelope.py). ``EnvelopeAutoSchema`` closes that gap in one place:

- a success body is documented inside its envelope: ``<Name>Envelope`` (``data``
  is the object) or, for a paginated list, ``Paginated<Name>List`` (``data`` is the
  page, ``pagination`` the ``Pagination`` object); a ``204`` has no body;
- every operation lists the error statuses it can answer, each with the ``Error``
  envelope whose ``error`` is the ``ErrorCode`` enum (the values of
  ``core.envelope.ERROR_CODES``). 400/401/403/404/413/415/429 are inferred from
  the view (body, parameters, authenticators, throttles, pagination); statuses that
  only the service knows (409, 503) are declared by the view, e.g.
  ``responses={200: JobSerializer, 409: OpenApiResponse(description="...")}``;
- path variables matched by ``[0-9]+`` are integers;
- public operations declare no security requirement; the others accept the token
  (``Authorization: Token <key>``) or the session cookie.

``postprocess_envelope_components`` (a POSTPROCESSING_HOOK) adds the shared
components (``Error``, ``ErrorCode``, ``Pagination``) that the above refers to.

Descriptions are for API consumers: view and action docstrings are published
here and on the browsable API, so budgets, cache internals and file paths go in
code comments, never in docstrings of views.
"""
import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework.authentication import SessionAuthentication

from .envelope import ERROR_CODES

ERROR_REF = {"$ref": "#/components/schemas/Error"}
PAGINATION_REF = {"$ref": "#/components/schemas/Pagination"}

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: a field, a query parameter or the JSON body is wrong (see `details`).",
    "401": "Credentials are required and missing, or the token sent is not valid.",
    "403": "Signed in, but not allowed: wrong role, not the owner, or a session-cookie "
    "request without a CSRF token.",
    "404": "No such resource, or one the caller may not see (the two are not told apart); "
    "for a list, a page past the end.",
    "409": "The request clashes with the current state of the resource.",
    "413": "The request body is too large.",
    "415": "The request body is not JSON (send `Content-Type: application/json`).",
    "429": "Too many requests: wait for the number of seconds in the `Retry-After` header.",
    "503": "A service this operation needs is temporarily unavailable; try again later.",
}

# Envelope fields every JSON body carries after ``data``/``error``.
_TAIL_PROPERTIES = {
    "message": {"type": "string", "nullable": True, "description": "A human sentence, or null."},
    "correlation_id": {
        "type": "string",
        "description": "The request id (also sent as the `X-Request-ID` response header).",
    },
    "timestamp": {"type": "string", "format": "date-time"},
}


def envelope_schema(data_schema: dict) -> dict:
    """The success envelope of a single object (or any non-list body)."""
    return {
        "type": "object",
        "required": ["success", "data", "message", "correlation_id", "timestamp"],
        "properties": {"success": {"type": "boolean"}, "data": data_schema, **_TAIL_PROPERTIES},
    }


def paginated_envelope_schema(page_schema: dict) -> dict:
    """The success envelope of a list page (used by ``EnvelopePagination``)."""
    return {
        "type": "object",
        "required": ["success", "data", "pagination", "message", "correlation_id", "timestamp"],
        "properties": {
            "success": {"type": "boolean"},
            "data": page_schema,
            "pagination": PAGINATION_REF,
            **_TAIL_PROPERTIES,
        },
    }


PAGINATION_SCHEMA = {
    "type": "object",
    "required": ["page", "per_page", "total_items", "total_pages", "has_next", "has_prev"],
    "properties": {
        "page": {"type": "integer"},
        "per_page": {"type": "integer"},
        "total_items": {"type": "integer"},
        "total_pages": {"type": "integer"},
        "has_next": {"type": "boolean"},
        "has_prev": {"type": "boolean"},
        "total_items_capped": {
            "type": "boolean",
            "description": "Present (true) only when the list is longer than total_items: "
            "counting stops there and later pages are not served; narrow the filters.",
        },
    },
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["success", "error", "message", "details", "correlation_id", "timestamp"],
    "properties": {
        "success": {"type": "boolean"},
        "error": {"$ref": "#/components/schemas/ErrorCode"},
        "message": {"type": "string", "description": "A human sentence saying what went wrong."},
        "details": {
            "type": "object",
            "additionalProperties": {},
            "description": "For a validation error: the messages per field (`non_field_errors` "
            "for the body as a whole); otherwise empty or context of the error.",
        },
        "correlation_id": _TAIL_PROPERTIES["correlation_id"],
        "timestamp": _TAIL_PROPERTIES["timestamp"],
    },
}


def error_code_schema() -> dict:
    return {
        "type": "string",
        "enum": sorted(set(ERROR_CODES.values())),
        "description": "What kind of error: " + ", ".join(
            f"`{code}` ({status})" for status, code in sorted(ERROR_CODES.items())
        ),
    }


_INTEGER_VARIABLE = r"\(\?P<{name}>\[0-9\]\+\)"


class EnvelopeAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with our envelopes and error statuses."""

    # -- success bodies ---------------------------------------------------------
    def _get_response_for_code(self, serializer, status_code, media_types=None, direction="response"):
        if str(status_code) >= "400":
            description = serializer.description if isinstance(serializer, OpenApiResponse) else ""
            return self._error_response(str(status_code), description)
        response = super()._get_response_for_code(serializer, status_code, media_types, direction)
        for media in response.get("content", {}).values():
            media["schema"] = self._enveloped(media["schema"])
        return response

    def _enveloped(self, schema: dict) -> dict:
        ref = schema.get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        if name.startswith("Paginated") or "pagination" in schema.get("properties", {}):
            return schema  # EnvelopePagination already built the list envelope
        if not ref:
            return envelope_schema(schema)
        component = ResolvedComponent(
            name=f"{name}Envelope",
            type=ResolvedComponent.SCHEMA,
            schema=envelope_schema(schema),
            object=f"{name}Envelope",
        )
        self.registry.register_on_missing(component)
        return component.ref

    # -- error statuses ---------------------------------------------------------
    def _error_response(self, status_code: str, description: str = "") -> dict:
        return {
            "description": description or ERROR_DESCRIPTIONS.get(status_code, "Error."),
            "content": {"application/json": {"schema": ERROR_REF}},
        }

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._inferred_error_statuses():
            responses.setdefault(code, self._error_response(code))
        return dict(sorted(responses.items()))

    def _inferred_error_statuses(self) -> list[str]:
        codes = []
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        has_query = self._is_list_view() or bool(self._get_filter_parameters()) or any(
            getattr(p, "location", "query") in ("query", "header") for p in self.get_override_parameters()
        )
        authenticators = self.view.get_authenticators()
        unsafe = self.method not in ("GET", "HEAD", "OPTIONS")
        if has_body or has_query:
            codes.append("400")
        if authenticators:
            codes.append("401")  # a token that is not valid is refused even where none is needed
        if unsafe and any(isinstance(a, SessionAuthentication) for a in authenticators):
            codes.append("403")  # CSRF for session cookies; roles and ownership
        if re.search(r"\{[^}]+\}", self.path) or (self._is_list_view() and self._get_paginator()):
            codes.append("404")
        if has_body:
            codes += ["413", "415"]
        try:
            throttled = bool(self.view.get_throttles())
        except Exception:  # noqa: BLE001 - a view whose throttles need a real request
            throttled = False
        if throttled:
            codes.append("429")
        return codes

    # -- security ---------------------------------------------------------------
    def get_auth(self):
        # A public operation carries no security requirement at all (rather than
        # "token, cookie or nothing"): generated clients then call it without
        # credentials. A token sent anyway is still checked (hence its 401).
        auths = super().get_auth()
        return [] if {} in auths else auths

    # -- parameters -------------------------------------------------------------
    def _resolve_path_parameters(self, variables):
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            # drf-spectacular publishes the router's "pk" as "id".
            names = {parameter["name"], "pk"} if parameter["name"] == "id" else {parameter["name"]}
            if any(re.search(_INTEGER_VARIABLE.format(name=re.escape(n)), self.path_regex) for n in names):
                parameter["schema"] = {"type": "integer"}
                if not parameter.get("description"):
                    parameter["description"] = "The id (an integer)."
        return parameters


def postprocess_envelope_components(result, generator, request, public):
    """Adds the shared envelope components referred to by EnvelopeAutoSchema."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["ErrorCode"] = error_code_schema()
    schemas["Pagination"] = PAGINATION_SCHEMA
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    return result


class TokenAuthScheme(OpenApiAuthenticationExtension):
    """``tokenAuth`` as a client author needs it: the header, its prefix, and where
    the key comes from (drf-spectacular's own extension has priority -1)."""

    target_class = "rest_framework.authentication.TokenAuthentication"
    name = "tokenAuth"
    match_subclasses = True
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"Send `Authorization: {self.target.keyword} <key>`, the key from "
            f"/api/v1/auth/register/ or /api/v1/auth/login/ (valid until logout). A generated "
            f"client sets the prefix `{self.target.keyword}` (openapi-python-client: "
            f"`AuthenticatedClient(..., prefix=\"{self.target.keyword}\")`).",
        }
