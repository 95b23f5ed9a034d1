"""The ingestion API (I5): POST /api/v1/feeds with a per-organization bearer token; OpenAPI under /api/v1/."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI, Schema, Status
from ninja.security import HttpBearer

from practices.importer import feed_import
from practices.models import ApiToken, FeedSource, FeedStatus
from practices.services import api_token_authenticate


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return api_token_authenticate(plaintext=token)


class Problem(Schema):
    pointer: str
    message: str


class FeedSummary(Schema):
    applied: int
    rejected: int
    errors: list[Problem]
    warnings: list[Problem]


class ErrorOut(Schema):
    detail: str


api = NinjaAPI(
    title="Patient payments: PMS ingestion API",
    version="1",
    urls_namespace="api-v1",
    description="Send one PMS feed document per organization per sync (SPEC §3).",
)

_FEED_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["generated_at"],
                    "properties": {
                        "organization": {"type": "string", "description": "the organization's slug"},
                        "generated_at": {"type": "string", "format": "date-time"},
                        "patients": {"type": "array", "items": {"type": "object"}},
                        "statements": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }
}


@api.post(
    "/feeds",
    auth=TokenAuth(),
    response={
        200: FeedSummary,
        207: FeedSummary,
        400: FeedSummary,
        403: ErrorOut,
        409: FeedSummary,
        503: FeedSummary,
    },
    openapi_extra=_FEED_BODY,
    summary="Import a PMS feed",
    description=(
        "200 when every record was applied, 207 when some records were rejected (each error names its JSON "
        "pointer), 400 when the document is not a feed at all, 409 when it is older than the last feed "
        "applied, 401 without a valid token, 403 when the document names another organization, 503 when the "
        "import failed for a reason of ours (nothing applied, the feed is kept; send it again)."
    ),
)
def post_feed(request: HttpRequest) -> Status[Any]:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    summary = feed_import(raw=request.body, source=FeedSource.API, organization=token.organization)
    if summary.forbidden:
        return Status(403, {"detail": summary.reason})
    if summary.status == FeedStatus.UNUSABLE:
        return Status(400, summary.as_json())
    if summary.status == FeedStatus.STALE:
        return Status(409, summary.as_json())
    if summary.status == FeedStatus.FAILED:
        return Status(503, summary.as_json())  # kept as received (I3); sending it again is safe
    return Status(207 if summary.rejected else 200, summary.as_json())
