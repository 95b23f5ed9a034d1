"""The nightly paper batch (L1): claim, render, manifest, mark mailed, the command, the admin (T1/T2/T5)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from dunning_project.periodic import PERIODIC_TASKS
from notifications import paylinks
from notifications.letters import batch as batch_module
from notifications.letters.batch import (
    MANIFEST_HEADER,
    LetterBatchFailed,
    letter_batch_mark_mailed,
    letter_batch_render,
    letter_batches_render_all,
)
from notifications.models import BatchState, Channel, LetterBatch, Message, Reason, State, Template
from notifications.tasks import render_letter_batches
from notifications.templating import message_values, render_message
from practices.models import AuditEvent, Bill, BillSource, BillState, Organization, Role
from tests.concurrency import in_threads
from tests.factories import (
    FEED_TIME,
    AccountFactory,
    GuarantorFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

BATCH_DAY = date(2026, 11, 24)


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def org():
    return OrganizationFactory.create(
        slug="smile-dental", name="Smile Dental", phone="(801) 555-0100", return_address_line1="1 Main St",
        return_address_city="Salt Lake City", return_address_state="UT", return_address_zip="84101",
    )  # fmt: skip


def rendered_batch(org, **kwargs) -> LetterBatch:
    """``letter_batch_render`` where letters are pending: the batch it made."""
    batch = letter_batch_render(organization=org, **kwargs)
    assert batch is not None
    return batch


def paper(
    patient, *, zip_code="84101", name=None, state=State.PENDING, channel=Channel.PAPER, **kw
) -> Message:
    if "bill" not in kw:
        # As the engine writes a letter: a bill of its own, and the context message_values() builds (display
        # strings; the letter reads the bill's values, never these strings).
        kw["bill"] = Bill.objects.create(
            organization=patient.organization, guarantor=patient, bill_id=f"S-{patient.pk}-{Message.objects.count()}",
            source=BillSource.STATEMENT, amount_due=Decimal("120.50"), statement_date=date(2026, 11, 20),
            due_date=date(2026, 12, 10), created_at=FEED_TIME, effective_created_date=FEED_TIME.date(),
            last_seen_at=FEED_TIME,
        )  # fmt: skip
        kw.setdefault("generation", 1)
    values = message_values(
        first_name=patient.first_name, last_name=patient.last_name, organization=patient.organization,
        amount_due=Decimal("120.50"), pay_ref=f"ref-{patient.external_id}",
        due_date=date(2026, 12, 10), statement_date=date(2026, 11, 20),
    )  # fmt: skip
    fields = {
        "organization": patient.organization,
        "patient": patient,
        "channel": channel,
        "state": state,
        "kind": "statement",
        "body": "Our records show a balance on your account.\n\nThank you.",
        "context": {**values, "aging": {"0_30": "20.50", "over_90": "100.00"}},
        "postal_address": {
            "name": name or patient.full_name,
            "line1": "12 Elm St",
            "line2": "",
            "city": "Salt Lake City",
            "state": "UT",
            "zip": zip_code,
        },
    }
    fields.update(kw)
    return Message.objects.create(**fields)


def pdf_pages(batch: LetterBatch) -> list[str]:
    with batch.pdf.open("rb") as handle:
        return [page.extract_text() for page in PdfReader(io.BytesIO(handle.read())).pages]


def manifest_rows(batch: LetterBatch) -> list[dict[str, str]]:
    with batch.manifest.open("rb") as handle:
        return list(csv.DictReader(io.StringIO(handle.read().decode("utf-8"))))


# --- rendering --------------------------------------------------------------------------------------------


def test_a_batch_takes_every_pending_paper_message_of_its_organization_and_nothing_else(org):
    zoe = paper(
        GuarantorFactory.create(organization=org, first_name="Zoe", last_name="Young"), zip_code="84103"
    )
    amy = paper(
        GuarantorFactory.create(organization=org, first_name="Amy", last_name="Ames"), zip_code="84103"
    )
    bob = paper(
        GuarantorFactory.create(organization=org, first_name="Bob", last_name="Burns"), zip_code="84101"
    )
    sms = paper(GuarantorFactory.create(organization=org), channel=Channel.SMS, destination="+18015550100")
    mailed = paper(GuarantorFactory.create(organization=org), state=State.SENT)
    other = paper(GuarantorFactory.create(organization=OrganizationFactory.create(slug="other")))

    batch = rendered_batch(org, batch_date=BATCH_DAY)

    assert batch is not None
    assert (batch.organization, batch.batch_date, batch.state) == (org, BATCH_DAY, BatchState.RENDERED)
    assert batch.letter_count == 3
    pages = pdf_pages(batch)
    assert len(pages) == 3
    # ZIP first, then the recipient's name: 84101 Bob, then 84103 Amy before Zoe.
    assert ["BOB BURNS" in pages[0], "AMY AMES" in pages[1], "ZOE YOUNG" in pages[2]] == [True] * 3
    rows = manifest_rows(batch)
    assert [(r["page"], r["message_id"], r["zip"]) for r in rows] == [
        ("1", str(bob.pk), "84101"),
        ("2", str(amy.pk), "84103"),
        ("3", str(zoe.pk), "84103"),
    ]
    for message in (zoe, amy, bob):
        message.refresh_from_db()
        assert (message.state, message.batch_id) == (State.SENDING, batch.pk)
        assert message.sending_started_at is not None
    for message, state in ((sms, State.PENDING), (mailed, State.SENT), (other, State.PENDING)):
        message.refresh_from_db()
        assert (message.state, message.batch_id) == (state, None)


def test_the_manifest_has_one_row_per_letter_and_no_date_of_birth(org):
    patient = GuarantorFactory.create(organization=org, external_id="G001", date_of_birth=date(1980, 4, 12))
    message = paper(patient)
    batch = rendered_batch(org, batch_date=BATCH_DAY)
    with batch.manifest.open("rb") as handle:
        raw = handle.read().decode("utf-8")
    assert tuple(raw.splitlines()[0].split(",")) == MANIFEST_HEADER
    assert "1980" not in raw
    assert manifest_rows(batch) == [
        {"page": "1", "message_id": str(message.pk), "patient_external_id": "G001",
         "guarantor_external_id": "G001", "recipient_name": "Ana Diaz", "city": "Salt Lake City",
         "state": "UT", "zip": "84101", "kind": "statement", "amount_due": "120.50"},
    ]  # fmt: skip


def test_the_letter_shows_the_amount_aging_and_payment_link_from_the_message(org):
    message = paper(GuarantorFactory.create(organization=org))
    text = pdf_pages(rendered_batch(org, batch_date=BATCH_DAY))[0]
    assert "$120.50" in text
    assert "$100.00" in text  # the over-90 bucket
    assert paylinks.pay_url(message.context) in text  # derived from the reference, never stored
    assert "November 20, 2026" in text
    assert "December 10, 2026" in text
    assert "Dear Ana," in text
    assert "SMILE DENTAL" in text  # the return address block


def test_without_context_or_postal_address_the_patient_and_account_fill_in(org, settings):
    patient = GuarantorFactory.create(
        organization=org, first_name="Carl", last_name="Cobb", address_line1="9 Oak Ave",
        address_city="Provo", address_state="UT", address_zip="84601",
    )  # fmt: skip
    AccountFactory.create(guarantor=patient, bucket_0_30=Decimal("0"), bucket_61_90=Decimal("77.25"),
                   total=Decimal("77.25"), patient_portion=Decimal("77.25"))  # fmt: skip
    paper(patient, context={}, postal_address={}, bill=None)

    batch = rendered_batch(org, batch_date=BATCH_DAY)

    text = pdf_pages(batch)[0]
    assert "CARL COBB" in text
    assert "9 OAK AVE" in text
    assert "PROVO UT 84601" in text
    assert "$77.25" in text
    assert settings.PUBLIC_BASE_URL in text
    assert "November 24, 2026" in text  # the statement date falls back to the batch date
    assert manifest_rows(batch)[0]["amount_due"] == "77.25"


def test_a_letter_with_no_address_at_all_is_undeliverable_and_not_printed(org):
    printable = paper(GuarantorFactory.create(organization=org))
    nowhere = paper(GuarantorFactory.create(organization=org), postal_address={})

    batch = rendered_batch(org, batch_date=BATCH_DAY)

    assert batch.letter_count == 1
    assert len(pdf_pages(batch)) == 1
    nowhere.refresh_from_db()
    assert (nowhere.state, nowhere.reason, nowhere.batch_id) == (
        State.UNDELIVERED,
        Reason.NO_DESTINATION,
        None,
    )
    assert list(batch.messages.values_list("pk", flat=True)) == [printable.pk]


def test_letters_of_ended_campaigns_and_do_not_contact_patients_are_cancelled_not_printed(org):
    closed_patient = GuarantorFactory.create(organization=org)
    closed_bill = Bill.objects.create(
        organization=org, guarantor=closed_patient, bill_id="B1", source=BillSource.STATEMENT,
        amount_due=Decimal("10.00"), created_at=FEED_TIME, effective_created_date=FEED_TIME.date(),
        state=BillState.PAID, last_seen_at=FEED_TIME,
    )  # fmt: skip
    ended = paper(closed_patient, bill=closed_bill)
    blocked = paper(GuarantorFactory.create(organization=org, do_not_contact=True))
    kept = paper(GuarantorFactory.create(organization=org))

    batch = rendered_batch(org, batch_date=BATCH_DAY)

    assert batch.letter_count == 1
    for message, reason in ((ended, Reason.BILL_NOT_ACTIVE), (blocked, Reason.DO_NOT_CONTACT)):
        message.refresh_from_db()
        assert (message.state, message.reason, message.batch_id) == (State.CANCELLED, reason, None)
    kept.refresh_from_db()
    assert kept.state == State.SENDING


def test_a_completed_bills_letter_is_printed_and_a_reset_bills_old_letter_is_not(org):
    """D11: the final letter of a completed bill goes; N1: a letter decided before a reset does not."""

    def bill(bill_id, **fields):
        return Bill.objects.create(
            organization=org, guarantor=GuarantorFactory.create(organization=org), bill_id=bill_id,
            source=BillSource.STATEMENT, amount_due=Decimal("10.00"), created_at=FEED_TIME,
            effective_created_date=FEED_TIME.date(), last_seen_at=FEED_TIME, **fields,
        )  # fmt: skip

    completed = bill("B1", state=BillState.COMPLETED)
    final = paper(completed.guarantor, bill=completed, generation=1, kind="final")
    reset = bill("B2", generation=2)
    stale = paper(reset.guarantor, bill=reset, generation=1)

    batch = rendered_batch(org, batch_date=BATCH_DAY)

    assert list(batch.messages.values_list("pk", flat=True)) == [final.pk]
    stale.refresh_from_db()
    assert (stale.state, stale.reason) == (State.CANCELLED, Reason.OLDER_GENERATION)


def test_a_letter_too_long_for_its_page_fails_alone_and_the_others_are_printed(org):
    too_long = paper(GuarantorFactory.create(organization=org), body="\n\n".join(["A paragraph."] * 200))
    fine = paper(GuarantorFactory.create(organization=org))

    batch = rendered_batch(org, batch_date=BATCH_DAY)

    assert batch.letter_count == 1
    assert [r["message_id"] for r in manifest_rows(batch)] == [str(fine.pk)]
    too_long.refresh_from_db()
    assert (too_long.state, too_long.error_code, too_long.batch_id) == (State.FAILED, "letter_too_long", None)


def test_a_second_run_with_nothing_pending_returns_none(org):
    paper(GuarantorFactory.create(organization=org))
    assert letter_batch_render(organization=org, batch_date=BATCH_DAY) is not None
    assert letter_batch_render(organization=org, batch_date=BATCH_DAY) is None
    assert LetterBatch.objects.count() == 1


def test_the_batch_date_defaults_to_the_organizations_today(org):
    paper(GuarantorFactory.create(organization=org))
    with time_machine.travel(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), tick=False):  # 20:00 in Denver
        batch = rendered_batch(org)
    assert batch.batch_date == date(2026, 11, 24)


def test_a_batch_holds_at_most_limit_letters_and_the_rest_wait_for_the_next(org):
    for _ in range(5):
        paper(GuarantorFactory.create(organization=org))
    counts = []
    while batch := letter_batch_render(organization=org, batch_date=BATCH_DAY, limit=2):
        counts.append(batch.letter_count)
    assert counts == [2, 2, 1]
    assert not Message.objects.filter(state=State.PENDING).exists()


def test_the_number_of_queries_does_not_grow_with_the_letters(org):
    def queries_for(count: int) -> int:
        for _ in range(count):
            paper(GuarantorFactory.create(organization=org))
        with CaptureQueriesContext(connection) as captured:
            letter_batch_render(organization=org, batch_date=BATCH_DAY)
        return len(captured)

    assert queries_for(2) == queries_for(8)


def test_a_crash_while_rendering_leaves_an_unmailable_batch_that_a_later_run_finishes(org, monkeypatch):
    messages = [paper(GuarantorFactory.create(organization=org)) for _ in range(2)]
    real_render = batch_module.render
    monkeypatch.setattr(batch_module, "render", lambda letters: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        letter_batch_render(organization=org, batch_date=BATCH_DAY)

    batch = LetterBatch.objects.get()
    assert not batch.pdf
    assert {m.state for m in Message.objects.filter(batch=batch)} == {State.SENDING}
    assert letter_batch_mark_mailed(batch=batch, user=UserFactory.create(is_superuser=True)) == 0
    monkeypatch.setattr(batch_module, "render", real_render)
    # Within the lease a run leaves it alone: the first run may still be rendering it.
    assert letter_batch_render(organization=org, batch_date=BATCH_DAY) is None
    batch.refresh_from_db()
    assert not batch.pdf

    LetterBatch.objects.filter(pk=batch.pk).update(created_at=batch.created_at - timedelta(hours=1))
    finished = rendered_batch(org, batch_date=BATCH_DAY)

    assert finished.pk == batch.pk
    assert finished.letter_count == 2
    assert len(pdf_pages(finished)) == 2
    assert sorted(int(r["message_id"]) for r in manifest_rows(finished)) == sorted(m.pk for m in messages)


def test_the_nightly_job_renders_every_organization_with_pending_letters(org):
    other = OrganizationFactory.create(slug="other")
    OrganizationFactory.create(slug="idle")
    paper(GuarantorFactory.create(organization=org))
    paper(GuarantorFactory.create(organization=other))
    paper(GuarantorFactory.create(organization=other))

    ids = render_letter_batches()

    batches = LetterBatch.objects.filter(pk__in=ids)
    assert sorted((b.organization.slug, b.letter_count) for b in batches) == [
        ("other", 2),
        ("smile-dental", 1),
    ]
    assert letter_batches_render_all() == []
    assert any(job.task == "notifications.render_letter_batches" and job.crontab for job in PERIODIC_TASKS)


def test_one_organizations_failure_does_not_stop_the_nightly_job(org, monkeypatch):
    broken = OrganizationFactory.create(slug="broken")
    paper(GuarantorFactory.create(organization=broken))
    paper(GuarantorFactory.create(organization=org))
    real = batch_module._batch_render_files

    def render_files(*, batch, moment):
        if batch.organization.slug == "broken":
            raise OSError("disk full")
        return real(batch=batch, moment=moment)

    monkeypatch.setattr(batch_module, "_batch_render_files", render_files)
    with pytest.raises(LetterBatchFailed, match="broken"):
        letter_batches_render_all()
    assert LetterBatch.objects.get(organization=org).pdf


# --- mark mailed ------------------------------------------------------------------------------------------


def test_marking_a_batch_mailed_sends_its_letters_and_is_audited_once(org):
    for _ in range(2):
        paper(GuarantorFactory.create(organization=org))
    batch = rendered_batch(org, batch_date=BATCH_DAY)
    ops = UserFactory.create(is_superuser=True)
    at = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)

    assert letter_batch_mark_mailed(batch=batch, user=ops, now=at) == 2

    assert (batch.state, batch.mailed_at, batch.mailed_by) == (BatchState.MAILED, at, ops)
    assert set(batch.messages.values_list("state", "sent_at")) == {(State.SENT, at)}
    event = AuditEvent.objects.get(action="letter_batch.mark_mailed")
    assert (event.actor, event.organization, event.object_id) == (ops, org, str(batch.pk))
    assert event.changes["messages_sent"] == 2

    assert letter_batch_mark_mailed(batch=batch, user=ops) == 0
    batch.refresh_from_db()
    assert batch.mailed_at == at
    assert AuditEvent.objects.filter(action="letter_batch.mark_mailed").count() == 1


# --- the command ------------------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("render_letters", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_render_letters_prints_the_path_of_the_batch_pdf(org, media):
    paper(GuarantorFactory.create(organization=org))
    code, out, _ = run("--org", "smile-dental", "--date", "2026-11-24")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    path = Path(lines[0])
    assert path.is_file()
    assert path.is_relative_to(media)
    assert path.read_bytes().startswith(b"%PDF")
    assert LetterBatch.objects.get().batch_date == BATCH_DAY


def test_render_letters_with_nothing_pending_says_so_on_stderr_and_exits_0(org):
    assert run("--org", "smile-dental") == (0, "", "no pending letters\n")


@pytest.mark.parametrize("args", [["--org", "nope"], ["--org", "smile-dental", "--date", "2026-13-01"],
                                  ["--org", "smile-dental", "--date", "24/11/2026"],
                                  ["--org", "smile-dental", "--date", "2026-1-5"]])  # fmt: skip
def test_render_letters_exits_2_on_an_unknown_org_or_a_bad_date(org, args):
    paper(GuarantorFactory.create(organization=org))
    code, out, _ = run(*args)
    assert (code, out) == (2, "")
    assert not LetterBatch.objects.exists()


# --- the admin --------------------------------------------------------------------------------------------


@pytest.fixture
def rendered(org) -> LetterBatch:
    paper(GuarantorFactory.create(organization=org))
    paper(GuarantorFactory.create(organization=org))
    return rendered_batch(org, batch_date=BATCH_DAY)


def test_a_superuser_downloads_the_pdf_and_the_manifest(client, rendered):
    client.force_login(UserFactory.create(is_superuser=True))
    response = client.get(reverse("admin:notifications_letterbatch_pdf", args=[rendered.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    response = client.get(reverse("admin:notifications_letterbatch_manifest", args=[rendered.pk]))
    assert b"".join(response.streaming_content).startswith(b"page,message_id")
    changelist = client.get(reverse("admin:notifications_letterbatch_changelist"))
    assert reverse("admin:notifications_letterbatch_pdf", args=[rendered.pk]) in changelist.content.decode()


def test_a_billing_manager_of_the_organization_may_download_its_batch(client, rendered, org):
    client.force_login(MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER).user)
    response = client.get(reverse("admin:notifications_letterbatch_pdf", args=[rendered.pk]))
    assert response.status_code == 200


def test_another_organizations_staff_cannot_download_a_batch(client, rendered):
    outsider = MembershipFactory.create(
        organization=OrganizationFactory.create(slug="other"), role=Role.ORG_ADMIN
    ).user
    client.force_login(outsider)
    for name in ("pdf", "manifest", "change"):
        url = reverse(f"admin:notifications_letterbatch_{name}", args=[rendered.pk])
        assert client.get(url).status_code == 404, name


def test_front_desk_staff_of_the_organization_cannot_download_a_batch(client, rendered, org):
    client.force_login(MembershipFactory.create(organization=org, role=Role.FRONT_DESK).user)
    response = client.get(reverse("admin:notifications_letterbatch_pdf", args=[rendered.pk]))
    # 403 or 404 depending on whether the admin's queryset is scoped by its own view role (T2).
    assert response.status_code in (403, 404)


def test_the_calibration_page_is_a_one_page_pdf(client):
    client.force_login(UserFactory.create(is_superuser=True))
    response = client.get(reverse("admin:notifications_letterbatch_calibration"))
    assert response.status_code == 200
    assert len(PdfReader(io.BytesIO(b"".join(response.streaming_content))).pages) == 1


def test_mark_mailed_shows_a_confirmation_page_first_and_acts_only_once_confirmed(client, rendered):
    ops = UserFactory.create(is_superuser=True)
    client.force_login(ops)
    url = reverse("admin:notifications_letterbatch_changelist")
    action = {"action": "mark_mailed", "_selected_action": [rendered.pk]}

    confirm = client.post(url, action)

    assert confirm.status_code == 200
    assert "admin/notifications/letterbatch/mark_mailed_confirmation.html" in [
        t.name for t in confirm.templates
    ]
    assert 'name="post" value="yes"' in confirm.content.decode()
    rendered.refresh_from_db()
    assert rendered.state == BatchState.RENDERED
    assert set(rendered.messages.values_list("state", flat=True)) == {State.SENDING}

    done = client.post(url, {**action, "post": "yes"}, follow=True)

    assert "Marked 1 batch(es) mailed and 2 letter(s) sent." in [str(m) for m in done.context["messages"]]
    rendered.refresh_from_db()
    assert (rendered.state, rendered.mailed_by) == (BatchState.MAILED, ops)
    assert set(rendered.messages.values_list("state", flat=True)) == {State.SENT}


def test_a_billing_manager_cannot_mark_a_batch_mailed(client, rendered, org):
    client.force_login(MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER).user)
    url = reverse("admin:notifications_letterbatch_changelist")
    assert "mark_mailed" not in client.get(url).content.decode()
    client.post(url, {"action": "mark_mailed", "_selected_action": [rendered.pk], "post": "yes"})
    rendered.refresh_from_db()
    assert rendered.state == BatchState.RENDERED


# --- concurrency (PostgreSQL) -----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_renders_never_take_the_same_message(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    org = OrganizationFactory.create(slug="smile-dental")
    messages = [paper(GuarantorFactory.create(organization=org), zip_code=f"84{i:03d}") for i in range(60)]

    def render_all() -> list[int]:
        ids = []
        while batch := letter_batch_render(organization=org, batch_date=BATCH_DAY, limit=4):
            ids.append(batch.pk)
        return ids

    results = in_threads(render_all, render_all)

    assert not any(isinstance(r, Exception) for r in results), results
    batches = list(LetterBatch.objects.all())
    assert sorted(b.pk for b in batches) == sorted(results[0] + results[1])
    printed = [int(row["message_id"]) for b in batches for row in manifest_rows(b)]
    assert sorted(printed) == sorted(m.pk for m in messages)  # each message exactly once
    assert sum(b.letter_count for b in batches) == 60
    for batch in batches:
        assert set(batch.messages.values_list("pk", flat=True)) == {
            int(row["message_id"]) for row in manifest_rows(batch)
        }


def test_a_letter_shows_its_bills_own_amount_and_statement_date_not_the_guarantors_portion(org):
    """Issue 11: patient portion 25.00, statement amount_due 40.00 → the letter and manifest say $40.00 and the
    statement's date, read from the bill (the body's context holds only display strings)."""
    patient = GuarantorFactory.create(organization=org)
    AccountFactory.create(guarantor=patient, bucket_0_30=Decimal("25.00"), total=Decimal("25.00"),
                   patient_portion=Decimal("25.00"))  # fmt: skip
    bill = Bill.objects.create(
        organization=org, guarantor=patient, bill_id="S-40", source=BillSource.STATEMENT, amount_due=Decimal("40.00"),
        statement_date=date(2026, 11, 1), due_date=date(2026, 11, 21), created_at=FEED_TIME,
        effective_created_date=date(2026, 11, 1), last_seen_at=FEED_TIME,
    )  # fmt: skip
    context = message_values(first_name="Ana", last_name="Diaz", organization=org, amount_due=Decimal("40.00"),
                             pay_ref="ref-x", due_date=bill.due_date,
                             statement_date=bill.statement_date)  # fmt: skip
    paper(patient, bill=bill, generation=1, context=context)

    batch = rendered_batch(org, batch_date=BATCH_DAY)

    text = pdf_pages(batch)[0]
    assert "Amount due\n $40.00" in text  # the guarantor's $25.00 is only the balance by age
    assert "November 1, 2026" in text
    assert "November 24, 2026" not in text
    assert manifest_rows(batch)[0]["amount_due"] == "40.00"


# --- issue 12 ----------------------------------------------------------------------------------------------


def test_the_letter_prints_the_practice_phone_as_a_person_dials_it(org):
    Organization.objects.filter(pk=org.pk).update(phone="+18015550199")
    org.refresh_from_db()
    template = Template.objects.get(organization=None, kind="statement", channel="paper")
    patient = GuarantorFactory.create(organization=org)
    message = paper(patient)
    _subject, body = render_message(template=template, values=message.context)
    Message.objects.filter(pk=message.pk).update(body=body)

    text = " ".join(pdf_pages(rendered_batch(org, batch_date=BATCH_DAY))[0].split())

    assert text.count("(801) 555-0199") == 2  # the letterhead and "please call us at …"
    assert "+1801" not in text


def test_a_letter_of_a_practice_without_a_phone_never_says_call_us_at_nothing(org):
    Organization.objects.filter(pk=org.pk).update(phone="")
    org.refresh_from_db()
    template = Template.objects.get(organization=None, kind="past_due", channel="paper")
    message = paper(GuarantorFactory.create(organization=org), kind="past_due")
    _subject, body = render_message(template=template, values=message.context)
    Message.objects.filter(pk=message.pk).update(body=body)

    text = " ".join(pdf_pages(rendered_batch(org, batch_date=BATCH_DAY))[0].split())

    assert "please call us at the office." in text
    assert "at ." not in text


def test_a_letter_mailed_after_its_bills_due_date_asks_for_payment_upon_receipt(org):
    """The bill was due December 10; the batch of December 12 must not say "Pay by December 10"."""
    paper(GuarantorFactory.create(organization=org), kind="past_due")

    text = pdf_pages(rendered_batch(org, batch_date=date(2026, 12, 12)))[0]

    assert "Payment was due December 10, 2026" in " ".join(text.split())
    assert "Pay by Upon receipt" in " ".join(text.split())
