from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from practices.models import Organization
from practices.org_settings import org_settings_update
from tests.factories import OrganizationFactory
from tests.fakes.opendental_server import FakeOpenDental

# The fake office's clock is 05:00 in Denver on 2026-11-24; our clock is the same moment in UTC.
SYNC_AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeOpenDental]:
    with FakeOpenDental() as server:
        yield server


def connect(organization: Organization, fake: FakeOpenDental, **extra: str) -> None:
    """Point the organization at the fake through org_settings, as ops would (SPEC §10)."""
    assignments = [
        "pms=opendental", f"pms_base_url={fake.base_url}", f"pms_developer_key={fake.developer_key}",
        f"pms_customer_key={fake.customer_key}", *(f"{k}={v}" for k, v in extra.items()),
    ]  # fmt: skip
    org_settings_update(organization=organization, assignments=assignments, actor_label="test")


@pytest.fixture
def org(fake: FakeOpenDental) -> Organization:
    organization = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    connect(organization, fake)
    # Payments taken from the connection on are posted back; the tests take theirs after this moment.
    from pms.models import Connection

    Connection.objects.filter(organization=organization).update(
        posting_starts_at=datetime(2026, 11, 1, tzinfo=UTC)
    )
    return organization
