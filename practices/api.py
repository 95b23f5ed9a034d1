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
                # What is refused as a whole document (400). Records are checked one by one (I2): a bad record,
                # even one that is not an object, is a 207 naming its pointer while the others are applied.
                "schema": {
                    "type": "object",
                    "required": ["generated_at"],
                    "anyOf": [{"required": ["patients"]}, {"required": ["statements"]}],
                    "properties": {
                        "organization": {
                            "type": "string",
                            "description": "the organization's slug (optional: the token names it)",
                        },
                        "generated_at": {"type": "string", "format": "date-time"},
                        "patients": {
                            "type": "array",
                            "items": {},
                            "description": "patient records (SPEC §3)",
                        },
                        "statements": {"type": "array", "items": {}, "description": "statement records"},
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
        401: ErrorOut,
        403: ErrorOut,
        409: FeedSummary,
        503: FeedSummary,
    },
    openapi_extra=_FEED_BODY,
    summary="Import a PMS feed",
    description=(
        "200 when every record was applied, 207 when some records were rejected (each error names its JSON "
        "pointer), 400 when the document is not a feed at all, 401 without a valid token, 403 when the "
        "document names another organization, 409 when it is older than the last feed applied or its "
        "generated_at cannot be true (before 1900, or more than a day ahead of now: check the PMS clock), "
        "503 when the import failed for a reason of ours (nothing applied, the feed is kept; send it again)."
    ),
)
def post_feed(request: HttpRequest) -> Status[Any]:
    # django-ninja sets request.auth after the token check; it types the request as Django's HttpRequest.
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    summary = feed_import(raw=request.body, source=FeedSource.API, organization=token.organization)
    if summary.forbidden:
        return Status(403, {"detail": summary.reason})
    if summary.status == FeedStatus.STALE or summary.out_of_time:
        return Status(409, summary.as_json())
    if summary.status == FeedStatus.UNUSABLE:
        return Status(400, summary.as_json())
    if summary.status == FeedStatus.FAILED:
        return Status(503, summary.as_json())  # kept as received (I3); sending it again is safe
    return Status(207 if summary.rejected else 200, summary.as_json())
