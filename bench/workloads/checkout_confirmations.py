"""Checkout confirmations (SPEC §11, H2): 10 000 signed Stripe events through ``/webhooks/stripe/`` of one web process.

Setup (untimed): one organization, one request campaign per payment with its link and an open Checkout of
Stripe's, the guarantors with email addresses (every payment also queues its email receipt through the outbox,
H4, on the harness's own Celery queue, dropped at the end: no worker runs here). The events are
what Stripe sends for a hosted checkout (tests/fakes/stripe_server.py builds the same shapes): for each payment
``payment_intent.succeeded`` and ``checkout.session.completed`` (two announcements of one payment: duplicates),
and one event in ten is delivered a second time with the same id (Stripe's retries), all shuffled. Each is
signed at sending time with Stripe's scheme (``t=…,v1=HMAC-SHA256``) under the endpoint secret.

The web process is one gunicorn process (gthread worker, 8 threads, the production server of
docs/operations.md) on the scratch database, with persistent connections (``conn_max_age``); sixteen client threads POST the events over keep-alive
connections. The figure is events per second from the first POST to the last answer, and the check is that
every payment is recorded exactly once (one row per PaymentIntent, each bill reduced by its amount once).
The baseline applies the same number of events, built the same way for a second organization, in this
process through the webhook's own function (verification and recording, no HTTP), one after another.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench import data
from bench.harness import Row, celery_queue, row, say
from bench.workloads import Context
from payments.models import Checkout, Payment, PaymentLink
from payments.webhooks import webhook_receive
from practices.models import Bill, BillSource, BillState, Organization, Patient
from tests.fakes.stripe_server import FAKE_SECRET_KEY, FAKE_WEBHOOK_SECRET, sign

ROOT = Path(__file__).resolve().parents[2]
BUDGET = "≥ 200 events/s per web process, 0 payments counted twice"
RETRY_SHARE = 10  # one event in ten is delivered twice
CLIENT_THREADS = 16


def run(ctx: Context) -> list[Row]:
    total = ctx.n(10_000, minimum=110)
    payments = max(10, round(total / (2 * (1 + 1 / RETRY_SHARE))))
    settings.PAYMENT_PROCESSOR = "stripe"
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = FAKE_SECRET_KEY, FAKE_WEBHOOK_SECRET

    web_org = data.organization("checkout-web", timezone="UTC")
    web_events, web_expected = _world(web_org, payments, prefix="W")
    base_org = data.organization("checkout-base", timezone="UTC")
    base_events, base_expected = _world(base_org, payments, prefix="B")
    data.analyze()

    started = time.perf_counter()
    for event in base_events:
        body = json.dumps(event)
        answer = webhook_receive(
            processor="stripe", payload=body.encode(), signature=sign(body, FAKE_WEBHOOK_SECRET)
        )
        assert answer.status_code == 200, answer.content
    baseline = len(base_events) / (time.perf_counter() - started)
    base_twice = _counted_twice(base_org, base_expected)

    server = _start_web()
    try:
        seconds, statuses = _deliver(server.url, web_events)
    finally:
        _stop(server)
        _drop_receipt_tasks()
    value = len(web_events) / seconds
    load = os.getloadavg()[0]
    refused = sum(1 for status in statuses if status != 200)
    twice = _counted_twice(web_org, web_expected)
    say(
        f"checkout confirmations: {value:.0f} events/s through one gunicorn process, {baseline:.0f} events/s "
        f"in-process; {twice} payments counted twice, {refused} events refused"
    )
    return [
        row("checkout_confirmations", value=value, unit="events/s", baseline=baseline, budget=BUDGET,
            ok=value >= 200 and twice == 0 and base_twice == 0 and refused == 0,
            notes=f"{len(web_events):,} signed events ({payments:,} payments: payment_intent.succeeded and "
            f"checkout.session.completed each, 1 in {RETRY_SHARE} delivered twice, shuffled) POSTed by "
            f"{CLIENT_THREADS} threads to one gunicorn process (gthread, 8 threads, persistent database connections); "
            f"{twice} payments counted "
            f"twice, {refused} refused; baseline: the same events through the webhook's function in this "
            f"process, no HTTP; load average {load:.1f} on {os.cpu_count()} cores when it ended"),
    ]  # fmt: skip


def _world(org: Organization, count: int, *, prefix: str) -> tuple[list[dict[str, Any]], dict[int, Decimal]]:
    """``count`` campaigns with a link and an open Stripe checkout each; their events, shuffled, and each
    bill's amount due once paid (the expected state)."""
    data.guarantors(org, count, prefix=prefix, mixed=False)
    now = timezone.now()
    guarantors = list(Patient.objects.filter(organization=org).order_by("pk"))
    bills = Bill.objects.bulk_create(
        Bill(organization=org, guarantor=g, bill_id=f"R-{g.external_id}", source=BillSource.REQUEST,
             state=BillState.ACTIVE, amount_due=Decimal("200.00") + g.pk % 300, created_at=now,
             effective_created_date=now.date(), last_seen_at=now)
        for g in guarantors
    )  # fmt: skip
    links = PaymentLink.objects.bulk_create(
        PaymentLink(
            organization=org, bill=b, token_hash=secrets.token_hex(32), expires_at=now + timedelta(days=30)
        )
        for b in bills
    )
    rng = random.Random(org.pk)
    checkouts = Checkout.objects.bulk_create(
        Checkout(organization=org, link=link, bill=link.bill, reference=f"chk_{secrets.token_urlsafe(18)}",
                 processor="stripe", session_id=f"cs_test_{secrets.token_hex(24)}",
                 amount=Decimal(rng.randint(100, 19_999)) / 100)
        for link in links
    )  # fmt: skip
    expected = {c.bill_id: c.bill.amount_due - Decimal(c.amount or 0) for c in checkouts}
    events: list[dict[str, Any]] = []
    for checkout in checkouts:
        cents = int(Decimal(checkout.amount or 0) * 100)
        intent = f"pi_{secrets.token_hex(12)}"
        metadata = {"checkout": checkout.reference, "organization": org.slug}
        events.append(_event("payment_intent.succeeded", {
            "id": intent, "object": "payment_intent", "amount": cents, "amount_received": cents, "currency": "usd",
            "metadata": metadata, "status": "succeeded", "latest_charge": f"ch_{secrets.token_hex(12)}",
        }))  # fmt: skip
        events.append(_event("checkout.session.completed", {
            "id": checkout.session_id, "object": "checkout.session", "mode": "payment", "status": "complete",
            "payment_status": "paid", "amount_total": cents, "currency": "usd",
            "client_reference_id": checkout.reference, "metadata": metadata, "payment_intent": intent,
        }))  # fmt: skip
    retries = [event for index, event in enumerate(events) if index % RETRY_SHARE == 0]
    everything = events + retries
    rng.shuffle(everything)
    return everything, expected


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Stripe's envelope (https://docs.stripe.com/api/events/object)."""
    return {
        "id": f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": "2026-10-28.endive",
        "created": int(time.time()), "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": kind,
    }  # fmt: skip


def _counted_twice(org: Organization, expected: dict[int, Decimal]) -> int:
    """Payments recorded more than once: extra rows per bill, and bills whose amount is not paid exactly once."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) - count(DISTINCT bill_id) FROM {data.table(Payment)} WHERE organization_id = %s",
            [org.pk],
        )
        extra = int(cursor.fetchone()[0])
    wrong = sum(
        1 for bill_id, due in Bill.objects.filter(organization=org).values_list("pk", "amount_due")
        if due != expected[bill_id]
    )  # fmt: skip
    recorded = Payment.objects.filter(organization=org).values("bill").distinct().count()
    if recorded != len(expected):
        raise RuntimeError(f"{len(expected) - recorded} of {len(expected)} payments were not recorded")
    return extra + wrong


def _drop_receipt_tasks() -> None:
    """Each payment queued its email receipt (H4) on the harness's own queue; no worker runs here, so they go."""
    if not settings.REDIS_URL:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"{celery_queue()}*"):
        client.delete(key)


class _Web:
    def __init__(self, process: subprocess.Popen[bytes], log: IO[bytes], url: str) -> None:
        self.process, self.log, self.url = process, log, url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_web() -> _Web:
    port = _free_port()
    database = os.environ["DATABASE_URL"]
    env = {
        **os.environ,  # DJANGO_SETTINGS_MODULE (bench.settings)
        # Persistent connections, as a production web process keeps them (django-environ's conn_max_age):
        # without them each request opens its own PostgreSQL connection.
        "DATABASE_URL": database + ("&" if "?" in database else "?") + "conn_max_age=60",
        "PAYMENT_PROCESSOR": "stripe",
        "STRIPE_SECRET_KEY": FAKE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": FAKE_WEBHOOK_SECRET,
        "STRIPE_API_BASE_URL": "http://127.0.0.1:9",  # never called: the webhook only verifies and records
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "dunning_project.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
               "--worker-class", "gthread", "--threads", "8", "--keep-alive", "30", "--log-level", "warning"]  # fmt: skip
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _stop)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/webhooks/stripe/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            requests.get(url, timeout=30)  # 405: it is up (the webhook takes POST only)
            return _Web(process, log, url)
        except requests.RequestException:
            time.sleep(0.1)
    _stop(_Web(process, log, url))
    log.seek(0)
    raise RuntimeError(f"gunicorn did not start: {log.read()[-2000:].decode(errors='replace')}")


def _deliver(url: str, events: list[dict[str, Any]]) -> tuple[float, list[int]]:
    """POST every event from ``CLIENT_THREADS`` threads (keep-alive sessions); seconds and the statuses."""
    local = threading.local()
    bodies = [json.dumps(event) for event in events]

    def post(body: str) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        headers = {"Stripe-Signature": sign(body, FAKE_WEBHOOK_SECRET), "Content-Type": "application/json"}
        return session.post(url, data=body.encode(), headers=headers, timeout=60).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        statuses = list(pool.map(post, bodies))
    return time.perf_counter() - started, statuses


def _stop(web: _Web) -> None:
    if web.process.poll() is None:
        web.process.send_signal(signal.SIGTERM)
        try:
            web.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.process.kill()
            web.process.wait()
    web.log.close()
