"""Schemathesis against the published OpenAPI schema of the ingestion API (I5, issue 11): generated documents,
valid and not, through the real Django app; every answer must be one the schema documents, never a 5xx.

A few examples per run in the suite (``API_FUZZ_EXAMPLES``, default 40); ``make fuzz`` runs many more."""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from dunning_project.wsgi import application
from practices.services import api_token_issue
from tests.factories import OrganizationFactory

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "40"))


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def keep_connection():
    """The WSGI app is called directly (not through Django's test client), so, as the client does, the test's
    connection is not closed at the end of each request: it holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, keep_connection):
    return api_token_issue(organization=OrganizationFactory.create(slug="smile-dental"), name="fuzz")[1]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_the_feed_api_never_answers_a_server_error_or_off_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
