"""Small factory-boy factories for the PMS mirror. Feed-shaped dicts live in ``feed_patient``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from practices.models import Account, Membership, Organization, Patient, Role

FEED_TIME = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


class OrganizationFactory(factory.django.DjangoModelFactory[Organization]):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"practice-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    timezone = "America/Denver"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True

    @factory.post_generation
    def password(obj: Any, create: bool, extracted: Any, **kwargs: Any) -> None:
        obj.set_password(extracted or "pw")
        if create:
            obj.save(update_fields=["password"])


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.FRONT_DESK


class GuarantorFactory(factory.django.DjangoModelFactory[Patient]):
    class Meta:
        model = Patient
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    external_id = factory.Sequence(lambda n: f"P{n:05d}")
    guarantor_external_id = factory.SelfAttribute("external_id")
    is_guarantor = True
    first_name = "Ana"
    last_name = "Diaz"
    last_feed_at = FEED_TIME

    @factory.post_generation
    def link(obj: Patient, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and obj.guarantor_id is None:
            obj.guarantor = obj
            obj.save(update_fields=["guarantor"])


class AccountFactory(factory.django.DjangoModelFactory[Account]):
    class Meta:
        model = Account

    guarantor = factory.SubFactory(GuarantorFactory)
    organization = factory.SelfAttribute("guarantor.organization")
    bucket_0_30 = Decimal("100.00")
    total = Decimal("100.00")
    patient_portion = Decimal("100.00")
    aging_category = "0_30"
    as_of = FEED_TIME


def feed_patient(pid: str, guarantor_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid feed patient record (a guarantor unless ``guarantor_id`` names another patient)."""
    record: dict[str, Any] = {
        "id": pid,
        "guarantor_id": guarantor_id or pid,
        "first_name": "Ana",
        "last_name": "Diaz",
        "date_of_birth": "1980-04-12",
        "email": f"{pid.lower()}@example.com",
        "mobile_phone": "+18015550100",
        "address": {
            "line1": "1 Main St",
            "line2": "",
            "city": "Salt Lake City",
            "state": "UT",
            "zip": "84101",
        },
        "last_visit_date": "2026-10-01",
        "on_payment_plan": False,
    }
    if record["guarantor_id"] == pid:
        record["balance"] = {"0_30": "120.00", "31_60": "0", "61_90": "0", "over_90": "0",
                             "insurance_estimate": "20.00"}  # fmt: skip
    record.update(overrides)
    return record


def feed_statement(bill_id: str, guarantor_id: str, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "bill_id": bill_id,
        "guarantor_id": guarantor_id,
        "statement_date": "2026-11-20",
        "due_date": "2026-12-10",
        "amount_due": "100.00",
        "dunning_status": "due",
        "reset_bill": False,
    }
    record.update(overrides)
    return record
