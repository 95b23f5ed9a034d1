"""One lock order across the writers of an organization (issue 11): import x dunning, import x payment,
import x bulk send, dunning x webhook race on PostgreSQL, many times, with no deadlock and no lost write.

The order (docs/architecture.md): the organization's row is taken FOR NO KEY UPDATE by whoever must
serialise a whole organization (an import, a campaign start); bills, links and messages are locked FOR NO
KEY UPDATE. Inserting a row that references a locked row (a payment, a message, a decision) only needs
KEY SHARE, which NO KEY UPDATE does not block: a writer never waits for the organization lock while holding
a bill another writer needs."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any
from unittest import mock

import pytest

from dunning.engine import run_dunning
from dunning.models import DunningDecision, DunningSettings, Preset
from notifications.models import Channel, OptOut, OptOutSource
from notifications.optouts import opt_out_set
from payments.campaigns import bulk_send, campaign_start
from payments.checkout import checkout_begin
from payments.confirmations import processor_event_apply
from payments.links import payment_link_create
from payments.models import Payment, PaymentKind, PaymentStatus, RequestMode, SandboxEvent
from payments.processors.base import ProcessorEvent, RefundResult
from payments.processors.sandbox import SandboxProcessor, hosted_outcome
from payments.refunds import payment_refund
from practices.importer import feed_import
from practices.models import Bill, FeedImport, FeedStatus, Organization, Patient
from tests.concurrency import in_threads
from tests.factories import OrganizationFactory, feed_patient, feed_statement

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TRIALS = 4
FAMILIES = 150


def _feed(feed_bytes: Any, slug: str, *, when: str, amount: str, statements: bool = True) -> bytes:
    patients = [
        feed_patient(f"P{i}", mobile_phone=f"+1801555{i:04d}",
                     balance={"0_30": amount, "31_60": "0", "61_90": "0", "over_90": "0", "insurance_estimate": "0"})
        for i in range(FAMILIES)
    ]  # fmt: skip
    rows = (
        [feed_statement(f"S-{i}", f"P{i}", amount_due=amount) for i in range(FAMILIES)] if statements else []
    )
    return feed_bytes(organization=slug, generated_at=when, patients=patients, statements=rows)


def _organization(slug: str) -> Organization:
    org = OrganizationFactory.create(slug=slug, timezone="America/Denver")
    DunningSettings.objects.create(organization=org, preset=Preset.objects.get(slug="standard-30"))
    return org


def _no_errors(results: list[Any]) -> None:
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors


def test_an_import_and_a_dunning_run_never_deadlock_and_both_apply(feed_bytes):
    for trial in range(TRIALS):
        slug = f"race-dunning-{trial}"
        org = _organization(slug)
        assert (
            feed_import(raw=_feed(feed_bytes, slug, when="2026-11-23T12:00:00Z", amount="100.00")).rejected
            == 0
        )
        update = _feed(feed_bytes, slug, when="2026-11-24T12:00:00Z", amount="80.00")

        results = in_threads(
            partial(feed_import, raw=update),
            partial(run_dunning, organization=org, on=date(2026, 11, 24)),
        )

        _no_errors(results)
        assert results[0].status == FeedStatus.APPLIED
        assert set(Bill.objects.filter(organization=org).values_list("amount_due", flat=True)) == {
            Decimal("80.00")
        }
        assert DunningDecision.objects.filter(organization=org).values("bill").distinct().count() == FAMILIES


class SlowSandbox(SandboxProcessor):
    """A processor that takes its time to refund, as real ones do (about a second)."""

    def refund(self, **kwargs: Any) -> RefundResult:
        time.sleep(0.4)
        return super().refund(**kwargs)


@pytest.fixture(autouse=True)
def _sandbox_events_stay_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    # The events are applied by the test itself; no delivery thread outlives it.
    monkeypatch.setattr("payments.processors.sandbox.events_deliver_later", lambda event_ids: None)


def _paid_on_the_sandbox(bill: Bill, amount: str) -> list[ProcessorEvent]:
    """A checkout of ``amount`` paid on the sandbox's page: the signed events it queued, parsed."""
    link, _url = payment_link_create(bill=bill)
    checkout, _page = checkout_begin(link=link, amount=Decimal(amount), success_url=lambda r: "http://t/ok",
                                     cancel_url="http://t/no", processor=SandboxProcessor())  # fmt: skip
    hosted_outcome(session_id=checkout.session_id, outcome="pay", webhook_url="http://t/webhooks/sandbox/")
    events = [json.loads(e.payload) for e in SandboxEvent.objects.filter(delivered_at__isnull=True)]
    SandboxEvent.objects.update(delivered_at=datetime.now(UTC))
    return [
        ProcessorEvent(id=e["id"], type=e["type"], created=e["created"], object=e["data"]["object"])
        for e in events
    ]


def test_a_payment_confirmed_while_an_import_runs_is_always_recorded(feed_bytes):
    for trial in range(TRIALS):
        slug = f"race-pay-{trial}"
        org = _organization(slug)
        feed_import(
            raw=_feed(feed_bytes, slug, when="2026-11-23T12:00:00Z", amount="100.00", statements=False)
        )
        guarantor = Patient.objects.get(organization=org, external_id="P7")
        bill = campaign_start(organization=org, guarantor=guarantor, mode=RequestMode.SINGLE,
                              at=datetime(2026, 11, 23, 18, tzinfo=UTC))  # fmt: skip
        events = _paid_on_the_sandbox(bill, "40.00")
        update = _feed(feed_bytes, slug, when="2026-11-24T12:00:00Z", amount="100.00", statements=False)

        results = in_threads(
            *[partial(processor_event_apply, processor="sandbox", event=event) for event in events],
            partial(feed_import, raw=update),
        )

        _no_errors(results)
        assert Payment.objects.filter(bill=bill, status=PaymentStatus.SUCCEEDED).count() == 1
        bill.refresh_from_db()
        assert bill.amount_due == Decimal("60.00")  # the PMS's 100.00 less the payment it has not seen yet
        assert FeedImport.objects.filter(organization=org, status=FeedStatus.APPLIED).count() == 2


def test_a_refund_made_while_an_import_runs_is_always_recorded(feed_bytes):
    """The refund holds the bill across the processor's call; the import waits for it, never deadlocks."""
    for trial in range(TRIALS):
        slug = f"race-refund-{trial}"
        org = _organization(slug)
        feed_import(
            raw=_feed(feed_bytes, slug, when="2026-11-23T12:00:00Z", amount="100.00", statements=False)
        )
        guarantor = Patient.objects.get(organization=org, external_id="P7")
        bill = campaign_start(organization=org, guarantor=guarantor, mode=RequestMode.SINGLE,
                              at=datetime(2026, 11, 23, 18, tzinfo=UTC))  # fmt: skip
        for event in _paid_on_the_sandbox(bill, "40.00"):
            processor_event_apply(processor="sandbox", event=event)
        payment = Payment.objects.get(bill=bill)
        update = _feed(feed_bytes, slug, when="2026-11-24T12:00:00Z", amount="100.00", statements=False)

        def refund(payment: Payment = payment) -> Any:
            with mock.patch("payments.refunds.get_processor", lambda name: SlowSandbox()):
                return payment_refund(payment=payment, amount=Decimal("15.00"), actor_label="test")

        def import_soon(update: bytes = update) -> Any:
            time.sleep(0.1)  # the refund holds its bill when the import starts
            return feed_import(raw=update)

        results = in_threads(refund, import_soon)

        _no_errors(results)
        assert Payment.objects.filter(bill=bill, kind=PaymentKind.REFUND).count() == 1
        bill.refresh_from_db()
        assert bill.amount_due == Decimal("75.00")  # 100.00 less the 40.00 paid, plus the 15.00 refunded


def test_a_bulk_send_and_an_import_never_deadlock_and_no_guarantor_gets_two_campaigns(feed_bytes):
    for trial in range(TRIALS):
        slug = f"race-send-{trial}"
        org = _organization(slug)
        feed_import(
            raw=_feed(feed_bytes, slug, when="2026-11-23T12:00:00Z", amount="100.00", statements=False)
        )
        update = _feed(feed_bytes, slug, when="2026-11-24T12:00:00Z", amount="90.00")

        results = in_threads(
            partial(bulk_send, organization=org, at=datetime(2026, 11, 24, 18, tzinfo=UTC)),
            partial(feed_import, raw=update),
        )

        _no_errors(results)
        active = Bill.objects.filter(organization=org, state="active")
        assert active.count() == FAMILIES
        assert active.values("guarantor").distinct().count() == FAMILIES


def test_a_dunning_run_and_opt_out_webhooks_never_deadlock_and_no_text_goes_to_an_opted_out_number(
    feed_bytes,
):
    for trial in range(TRIALS):
        slug = f"race-stop-{trial}"
        org = _organization(slug)
        feed_import(raw=_feed(feed_bytes, slug, when="2026-11-23T12:00:00Z", amount="100.00"))
        numbers = [f"+1801555{i:04d}" for i in range(0, FAMILIES, 3)]

        def stops(org=org, numbers=numbers) -> None:
            for number in numbers:
                opt_out_set(organization=org, channel=Channel.SMS, address=number, active=True,
                            source=OptOutSource.SMS_KEYWORD, keyword="STOP")  # fmt: skip

        results = in_threads(partial(run_dunning, organization=org, on=date(2026, 11, 24)), stops)

        _no_errors(results)
        assert OptOut.objects.filter(organization=org, active=True).count() == len(numbers)
        # Whichever came first, no SMS to an opted-out number is left to go: either the engine saw the opt-out
        # (skip) or the opt-out cancelled the pending message; the pre-send re-check catches the rest.
        assert DunningDecision.objects.filter(organization=org).values("bill").distinct().count() == FAMILIES
