"""Imports of one organization never interleave (a row lock on the organization) — needs PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from practices.importer import feed_import
from practices.models import FeedImport, FeedStatus, Patient
from tests.factories import OrganizationFactory, feed_patient

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _in_threads(*jobs):
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except Exception as exc:  # pragma: no cover - reported below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_the_same_feed_sent_twice_at_once_is_applied_once(feed_bytes):
    OrganizationFactory(slug="smile-dental")
    raw = feed_bytes(patients=[feed_patient(f"P{i}") for i in range(300)])
    results = _in_threads(lambda: feed_import(raw=raw), lambda: feed_import(raw=raw))
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(FeedImport.objects.values_list("status", flat=True)) == [
        FeedStatus.APPLIED,
        FeedStatus.DUPLICATE,
    ]
    assert Patient.objects.count() == 300


def test_an_older_feed_racing_a_newer_one_never_wins(feed_bytes):
    OrganizationFactory(slug="smile-dental")
    new = feed_bytes(
        generated_at="2026-11-25T06:00:00Z",
        patients=[feed_patient(f"P{i}", first_name="New") for i in range(200)],
    )
    old = feed_bytes(
        generated_at="2026-11-24T06:00:00Z",
        patients=[feed_patient(f"P{i}", first_name="Old") for i in range(200)],
    )
    results = _in_threads(lambda: feed_import(raw=new), lambda: feed_import(raw=old))
    assert not any(isinstance(r, Exception) for r in results), results
    assert set(Patient.objects.values_list("first_name", flat=True)) == {"New"}
