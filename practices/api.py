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

_DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD; before 1900 is 'no date' (I1a)"}
_MONEY = {
    "type": ["string", "number"],
    "description": "at most 2 decimals; a number within 0.000001 of a cent is that cent (I1a)",
}
_TEXT = {"type": "string"}
_FLAG = {"type": "boolean"}
_PHONE = {
    "type": "string",
    "description": "normalised to E.164 (US default); unparseable: missing, a warning",
}
# The record shapes of SPEC §3 and §13.2, for the reader. Each record is checked on its own (I2), so the body's
# schema accepts any value in the arrays (``anyOf`` with ``{}``): a record off this shape is a 207 naming its
# pointer, never a 400 for the whole feed.
PATIENT_RECORD = {
    "title": "Patient record",
    "type": "object",
    "required": ["id", "guarantor_id", "last_name"],
    "properties": {
        "id": {"type": ["string", "integer"], "description": "the PMS id"},
        "guarantor_id": {"type": ["string", "integer"], "description": "the guarantor's id (itself for one)"},
        "first_name": {"type": "string", "description": "required but on a guarantor (a business, an estate)"},
        "last_name": _TEXT,
        "preferred_name": {"type": "string", "description": "§13.2: greetings use it"},
        "date_of_birth": _DATE,
        "email": {"type": "string", "description": "several: the first valid one; placeholders are missing"},
        "mobile_phone": _PHONE,
        "home_phone": {**_PHONE, "description": "§13.2: shown to staff, never texted"},
        "work_phone": {**_PHONE, "description": "§13.2: shown to staff, never texted"},
        "sms_consent": {"type": "string", "enum": ["yes", "no", "unknown"], "description": "§13.2"},
        "language": {"type": "string", "description": "§13.2: ISO 639-1, e.g. es; English is the fallback"},
        "care_of": {"type": "string", "description": "§13.2: a name line on letters (C/O)"},
        "deceased": {**_FLAG, "description": "§13.2: nothing is sent; every campaign closes"},
        "address": {
            "type": "object",
            "properties": {
                "line1": _TEXT, "line2": _TEXT, "city": _TEXT,
                "state": {"type": "string", "description": "USPS code, or the state's name (I1a)"},
                "zip": {"type": ["string", "integer"], "description": "ZIP or ZIP+4 (I1a: 841011234, 2134)"},
            },
        },
        "address_status": {"type": "string", "enum": ["valid", "invalid"]},
        "last_visit_date": _DATE,
        "on_payment_plan": _FLAG,
        "do_not_contact": _FLAG,
        "sms_opt_out": _FLAG,
        "email_opt_out": _FLAG,
        "open_claims": {"type": "integer", "minimum": 0},
        "timezone": {"type": "string", "description": "IANA"},
        "balance": {
            "type": "object",
            "description": "on a guarantor: the family's aging (ignored on a dependent)",
            "properties": {name: _MONEY for name in ("0_30", "31_60", "61_90", "over_90", "insurance_estimate")},
        },
    },
}  # fmt: skip
STATEMENT_RECORD = {
    "title": "Statement record",
    "type": "object",
    "required": ["bill_id", "guarantor_id", "statement_date", "amount_due"],
    "properties": {
        "bill_id": {"type": ["string", "integer"]},
        "guarantor_id": {"type": ["string", "integer"], "description": "a dependent's: its guarantor's (I1a)"},
        "patient_id": {"type": ["string", "integer"], "description": "§13.2: the dependent it is for"},
        "statement_date": _DATE,
        "due_date": _DATE,
        "amount_due": _MONEY,
        "dunning_status": {"type": "string", "enum": ["", "new", "due", "past_due", "final"]},
        "reset_bill": _FLAG,
        "sent_by_pms": {
            "type": "string", "enum": ["mail", "email", "none"],
            "description": "§13.2: the PMS already sent it this way; that channel's age-0 step is skipped",
        },
    },
}  # fmt: skip

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
                            "items": {"anyOf": [PATIENT_RECORD, {}]},
                            "description": "patient records (SPEC §3, §13.2)",
                        },
                        "statements": {
                            "type": "array",
                            "items": {"anyOf": [STATEMENT_RECORD, {}]},
                            "description": "statement records (SPEC §3, §13.2)",
                        },
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
