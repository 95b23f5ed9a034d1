"""Imports of one organization never interleave (a row lock on the organization) — needs PostgreSQL."""

from __future__ import annotations

import pytest

from practices.importer import feed_import
from practices.models import FeedImport, FeedStatus, Patient
from tests.concurrency import in_threads
from tests.factories import OrganizationFactory, feed_patient

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_feed_sent_twice_at_once_is_applied_once(feed_bytes):
    OrganizationFactory.create(slug="smile-dental")
    raw = feed_bytes(patients=[feed_patient(f"P{i}") for i in range(300)])
    results = in_threads(lambda: feed_import(raw=raw), lambda: feed_import(raw=raw))
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(FeedImport.objects.values_list("status", flat=True)) == [
        FeedStatus.APPLIED,
        FeedStatus.DUPLICATE,
    ]
    assert Patient.objects.count() == 300


def test_an_older_feed_racing_a_newer_one_never_wins(feed_bytes):
    OrganizationFactory.create(slug="smile-dental")
    new = feed_bytes(
        generated_at="2026-11-25T06:00:00Z",
        patients=[feed_patient(f"P{i}", first_name="New") for i in range(200)],
    )
    old = feed_bytes(
        generated_at="2026-11-24T06:00:00Z",
        patients=[feed_patient(f"P{i}", first_name="Old") for i in range(200)],
    )
    results = in_threads(lambda: feed_import(raw=new), lambda: feed_import(raw=old))
    assert not any(isinstance(r, Exception) for r in results), results
    assert set(Patient.objects.values_list("first_name", flat=True)) == {"New"}
