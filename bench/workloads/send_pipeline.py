"""The send pipeline (SPEC §11, N1/N2): pending SMS through Celery on Redis and one worker process to FakeTwilio.

One Celery worker process is started as a subprocess (``celery -A dunning_project worker --pool threads
--concurrency 4``: one process whose four threads overlap their waits on the database and the provider) on the scratch database, the developer's Redis (a queue of the harness's own) and a
FakeTwilio server (``tests/fakes/twilio_server.py``, the real Twilio SDK over HTTP) running in this process.
Each repetition creates pending SMS messages (untimed), then queues them the way the outbox does after a
commit and waits until every one is ``sent``: the figure is messages per second from the enqueue to the last
``sent``, median of five repetitions of a fifth of the 10 000 messages each. The baseline sends the same
number of messages straight through the SDK to the fake from this process, one after another, without
Celery or the database: what the provider round trip costs at the least.

The same pipeline is measured a second time with the compliance checks on (issue 15, ``send_pipeline_compliance``):
an organization with a frequency cap (K2, ``50/7d`` so that the six rounds to the same patients are counted but never
held), Sundays and holidays off (K1), and patients in Florida, whose state rule (Fla. Stat. § 559.72(17)) applies to
every text. Their zone is one where it is daytime on a weekday that is no US federal holiday when the run starts, so
that every message is checked and none is held: the figure is the cost of the checks, not of waiting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from bench import data
from bench.harness import Row, celery_queue, median, row, say
from bench.workloads import Context
from notifications.models import Channel, Kind, Message, NotificationSettings, State
from notifications.outbox import _enqueue
from notifications.providers import twilio
from notifications.send_window import federal_holidays
from practices.models import Organization, Patient, TimezoneSource
from tests.fakes.twilio_server import FAKE_ACCOUNT_SID, FAKE_AUTH_TOKEN, FAKE_FROM_NUMBER, FakeTwilio

PARTS = 5
BODY = "Bench Dental: Hi Ana, your balance of $120.50 is due Dec 14, 2026. Pay at {url} Reply STOP to opt out"
ROOT = Path(__file__).resolve().parents[2]


def run(ctx: Context) -> list[Row]:
    if not settings.REDIS_URL:
        return [
            Row("send_pipeline", None, "msg/s", None, None, "≥ 300 msg/s per worker process", False,
                notes="skipped: REDIS_URL is not set (the pipeline runs on Redis)")
        ]  # fmt: skip
    load = os.getloadavg()[0]  # the figures are per process: other work on the machine lowers them all
    total = ctx.n(10_000, minimum=100)
    part = max(20, total // PARTS)
    org = data.organization("send", timezone="UTC")
    NotificationSettings.objects.create(organization=org, quiet_start=dt_time(0), quiet_end=dt_time(0))
    data.guarantors(org, part, prefix="S", mixed=False)
    patients = list(Patient.objects.filter(organization=org).order_by("pk"))
    checked_org, zone = _compliance_organization(part)
    checked = list(Patient.objects.filter(organization=checked_org).order_by("pk"))

    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = FAKE_ACCOUNT_SID, FAKE_AUTH_TOKEN
        settings.TWILIO_API_BASE_URL, settings.TWILIO_FROM_NUMBER = fake.base_url, FAKE_FROM_NUMBER
        settings.TWILIO_ENABLED = True
        twilio.reset_client()
        worker = _start_worker(fake.base_url)
        try:
            _round(org, patients[:20], timeout=60)  # the worker is up, its connections are open
            _round(checked_org, checked[:20], timeout=60)
            # Rounds alternate, without and with the checks, so that a machine busy with something else slows both.
            rates: list[float] = []
            checked_rates: list[float] = []
            for _ in range(PARTS):
                rates.append(len(patients) / _round(org, patients, timeout=max(120, part / 20)))
                checked_rates.append(len(checked) / _round(checked_org, checked, timeout=max(120, part / 20)))
        finally:
            _stop(worker)
        fake.reset()
        started = time.perf_counter()
        for patient in patients:
            twilio.send_sms(to=patient.mobile_phone, body=BODY.format(url="https://x/p/t/"), status_callback="",
                            from_number=FAKE_FROM_NUMBER)  # fmt: skip
        direct = len(patients) / (time.perf_counter() - started)
        twilio.reset_client()
    value = median(rates)
    checked_value = median(checked_rates)
    say(
        f"send pipeline: {value:.0f} msg/s through Celery (one worker process), {checked_value:.0f} msg/s with the "
        f"compliance checks on, {direct:.0f} msg/s straight to the fake"
    )
    return [
        row("send_pipeline", value=value, unit="msg/s", baseline=direct, budget="≥ 300 msg/s per worker process",
            ok=value >= 300, reps=rates,
            notes=f"{PARTS} × {len(patients):,} SMS, enqueue to all sent, one worker process (threads pool, concurrency 4), "
            "Redis, FakeTwilio; baseline: the same SMS straight through the SDK from one process, no Celery or "
            f"database; load average {load:.1f} when the run began"),
        row("send_pipeline_compliance", value=checked_value, unit="msg/s", baseline=direct,
            budget="≥ 300 msg/s per worker process", ok=checked_value >= 300, reps=checked_rates,
            notes=f"as send_pipeline (rounds alternating with its own), with the checks of issue 15 on: frequency_cap=50/7d (counted, never reached), "
            f"send_on_sundays=false, send_on_holidays=false, patients in Florida (its state rule applies to every "
            f"text) in {zone}, daytime on a working day when measured; send_pipeline without them: {value:.0f} msg/s; "
            f"load average {load:.1f} when the run began"),
    ]  # fmt: skip


def _compliance_organization(count: int) -> tuple[Organization, str]:
    """An organization with every check of issue 15 on, and ``count`` Florida patients in a zone where the checks
    let every message go now (daytime, a working day that is no federal holiday)."""
    now = datetime.now(tz=ZoneInfo("UTC"))
    zone = next(
        name
        for name in ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
                     "Pacific/Honolulu", "Pacific/Guam", "Asia/Tokyo", "Asia/Kolkata", "Europe/Berlin",
                     "Europe/London", "Atlantic/Azores", "America/Sao_Paulo", "Pacific/Auckland")
        if 9 <= (local := now.astimezone(ZoneInfo(name))).hour < 19 and local.weekday() < 6
        and local.date() not in federal_holidays(local.year)
    )  # fmt: skip
    org = data.organization("send-checked", timezone=zone)
    NotificationSettings.objects.create(
        organization=org, quiet_start=dt_time(21), quiet_end=dt_time(8), frequency_cap="50/7d",
        send_on_sundays=False, send_on_holidays=False,
    )  # fmt: skip
    data.guarantors(org, count, prefix="T", mixed=False)
    Patient.objects.filter(organization=org).update(
        address_state="FL", address_zip="33130", timezone=zone, timezone_source=TimezoneSource.FEED
    )
    return org, zone


def _round(org, patients: list[Patient], *, timeout: float) -> float:
    """Create pending SMS to ``patients`` (untimed), queue them and wait for all ``sent``: the seconds."""
    messages = Message.objects.bulk_create(
        Message(organization=org, patient=patient, channel=Channel.SMS, kind=Kind.REMINDER, state=State.PENDING,
                body=BODY.format(url=f"https://x/p/{patient.pk}/"), destination=patient.mobile_phone)
        for patient in patients
    )  # fmt: skip
    ids = [m.pk for m in messages]
    started = time.perf_counter()
    _enqueue(ids)
    deadline = started + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM notifications_message WHERE id = ANY(%s) AND state = 'sent'", [ids]
            )
            sent = cursor.fetchone()[0]
        if sent == len(ids):
            return time.perf_counter() - started
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {sent} of {len(ids)} messages sent after {timeout:.0f} s")
        time.sleep(0.02)


@dataclass(frozen=True)
class _Worker:
    process: subprocess.Popen[bytes]
    log: IO[bytes]


def _start_worker(fake_url: str) -> _Worker:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "TWILIO_ACCOUNT_SID": FAKE_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": FAKE_AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_url,
        "TWILIO_FROM_NUMBER": FAKE_FROM_NUMBER,
    }
    celery = Path(sys.executable).with_name("celery")
    command = [str(celery), "-A", "dunning_project", "worker", "--pool", "threads", "--concurrency", "4", "-Q", celery_queue(),
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]  # fmt: skip
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _stop) - not a pipe: a chatty worker must never block on a full one
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return _Worker(process=process, log=log)


def _stop(worker: _Worker) -> None:
    process, log = worker.process, worker.log
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.seek(0)
    output = log.read().decode(errors="replace")
    log.close()
    if process.returncode not in (0, -signal.SIGTERM) and output:
        say(f"send pipeline: the worker said:\n{output[-2000:]}")
