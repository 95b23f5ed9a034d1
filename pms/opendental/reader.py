"""Read an office's Open Dental through its API, completely or not at all (C1).

A full read lists every patient (Patients GET Simple), every family's aging from Open Dental's A/R aging
report (Reports GET Aging: calculated as of now for every guarantor, a hundred families a request, where the
guarantor's stored BalTotal is only as fresh as the office's last aging run), the payment plans of each family
with a patient portion (PayPlans GET by Guarantor: the API has no list of all plans), every statement
(Statements GET), the claims not yet adjudicated (Claims GET by ClaimStatus) and the completed appointments of
the last two years (Appointments GET). An incremental read asks only for the patients and appointments changed
since the last complete read (their DateTStamp, with the serverDateTime Open Dental returned then), lists
statements and open claims again (Statements GET has no change filter; open claims are few), and reads the
aging (AccountModules GET Aging, per guarantor) and plans of the families that any of it touched. Any request
that still fails after the client's retries ends the read: the caller imports nothing.

Pages: https://www.opendental.com/site/apipatients.html, apireports.html, apiaccountmodules.html,
apipayplans.html, apistatements.html, apiclaims.html, apiappointments.html (under https://www.opendental.com/site/).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from pms.opendental.client import OpenDentalClient, OpenDentalError, OpenDentalRefused
from pms.opendental.values import od_bool, od_date, od_money, od_stamp

# Claims not yet adjudicated (R10, K6): every ClaimStatus but R (received); Claims GET (multiple) filters by
# one status at a time: U unsent, H hold until pri received, W waiting in queue, S sent, I hold for in process.
OPEN_CLAIM_STATUSES = ("U", "H", "W", "S", "I")
# A pre-authorization is an estimate request, not a claim insurance will pay.
NOT_A_CLAIM = frozenset({"PreAuth"})
VISIT_LOOKBACK = timedelta(days=730)
_GONE = object()

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


@dataclass(frozen=True)
class Known:
    """What this organization already mirrors (the incremental read and the mapping use it)."""

    guarantor_of: dict[str, str] = field(default_factory=dict)  # patient id -> guarantor id
    last_visit: dict[str, date] = field(default_factory=dict)  # patient id -> last visit on file
    open_claims: dict[str, int] = field(default_factory=dict)  # guarantor id -> open claims on file
    owing: frozenset[str] = frozenset()  # guarantors whose account here is not zero
    owing_bills: frozenset[str] = frozenset()  # bill ids of campaigns still owing


@dataclass
class OpenDentalRead:
    full: bool
    # serverDateTime of the first answer: the next incremental read asks for what changed after it.
    server_time: str
    patients: dict[int, dict[str, Any]]  # the patient records that go into the feed, by PatNum
    family_of: dict[int, int]  # PatNum -> its family's Guarantor, for every patient read or known
    aging: dict[int, dict[str, Any]]  # guarantor -> AccountModules GET Aging
    plans: dict[int, list[dict[str, Any]]]  # guarantor -> PayPlans GET
    statements: list[dict[str, Any]]
    open_claims: dict[int, int]  # guarantor -> claims not yet adjudicated
    visits: dict[int, date]  # PatNum -> latest completed appointment read
    families: set[int]  # the families whose guarantor goes into the feed
    requests: int = 0


def _collect(futures: dict[K, Future[R]]) -> dict[K, R]:
    """The results of ``futures``; the first error cancels what has not started and is raised."""
    done, pending = wait(futures.values(), return_when=FIRST_EXCEPTION)
    for future in done:
        error = future.exception()
        if error is not None:
            for other in pending:
                other.cancel()
            raise error
    return {key: future.result() for key, future in futures.items()}


def _patnum(record: dict[str, Any], key: str = "PatNum") -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise OpenDentalError(f"a record without a usable {key}: {str(record)[:120]}")
    try:
        return int(value)
    except ValueError:
        raise OpenDentalError(f"a record without a usable {key}: {str(record)[:120]}") from None


def _live(patients: Iterable[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    # A deleted patient is not to be touched (Patients: "A deleted patient ... not allowed to be modified").
    return {_patnum(p): p for p in patients if p.get("PatStatus") != "Deleted"}


def read_office(
    *, client: OpenDentalClient, today: date, known: Known, stamp: str = "", workers: int = 4
) -> OpenDentalRead:
    """Everything the feed needs; incremental when ``stamp`` (a serverDateTime) is given. The lists are paged
    one after another as Open Dental asks, each list and each family's requests on ``workers`` connections."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        return _read(client, pool, today=today, known=known, stamp=stamp)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _read(
    client: OpenDentalClient, pool: ThreadPoolExecutor, *, today: date, known: Known, stamp: str
) -> OpenDentalRead:
    full = not stamp
    if full:
        visit_params = {"AptStatus": "Complete", "dateStart": (today - VISIT_LOOKBACK).isoformat(),
                        "dateEnd": today.isoformat()}  # fmt: skip
    else:
        visit_params = {"AptStatus": "Complete", "DateTStamp": stamp}
    # The lists need nothing from each other: they are read while the patients are.
    lists: dict[str, Future[list[dict[str, Any]]]] = {
        "statements": pool.submit(client.get_all, "statements"),
        "appointments": pool.submit(client.get_all, "appointments", visit_params),
        **{
            status: pool.submit(client.get_all, "claims", {"ClaimStatus": status})
            for status in OPEN_CLAIM_STATUSES
        },
    }
    family_requests: dict[tuple[str, int], Future[Any]] = {}
    report: dict[int, dict[str, Any]] = {}

    def report_page(page: list[dict[str, Any]]) -> None:
        # Each family's aging as Open Dental calculates it now; a family with a patient portion is asked for
        # its payment plans as soon as its page is in (in a pool thread: the main thread reads these dicts
        # only once the report is done).
        for row in page:
            guarantor, aging = _patnum(row), report_aging(row)
            report[guarantor] = aging
            if patient_portion(aging) > 0 and ("plans", guarantor) not in family_requests:
                family_requests["plans", guarantor] = pool.submit(
                    _unless_gone, client.get_all, "payplans", {"Guarantor": guarantor}
                )

    if full:
        lists["aging"] = pool.submit(client.get_all, "reports/Aging", None, report_page)
    listed = client.get_all("patients/Simple", {} if full else {"DateTStamp": stamp})
    # Every item of one answer carries the same serverDateTime; the first answer's is the earliest.
    server_time = od_stamp(
        min((str(p["serverDateTime"]) for p in listed if p.get("serverDateTime")), default="")
    )
    patients = _live(listed)
    family_of = {
        int(pid): int(gid) for pid, gid in known.guarantor_of.items() if pid.isdigit() and gid.isdigit()
    }
    family_of.update({num: _patnum(p, "Guarantor") for num, p in patients.items()})
    listed_all = _collect(lists)
    if full:
        families = {family_of[num] for num in patients}
        # A guarantor of the report whom the patient list does not have any more is not used.
        family_requests = {key: f for key, f in family_requests.items() if key[1] in families}
    statements = listed_all["statements"]
    claims = [claim for status in OPEN_CLAIM_STATUSES for claim in listed_all[status]]
    visits: dict[int, date] = {}
    for appointment in listed_all["appointments"]:
        day = od_date(str(appointment.get("AptDateTime") or "")[:10])
        if day is not None and day <= today:
            num = _patnum(appointment)
            visits[num] = max(day, visits.get(num, day))

    if not full:
        # Whose family the changes touch: fetch the rows we must write and do not have (a dependent with a
        # new visit, the guarantor of a changed dependent, a family with a new statement or claim count).
        missing = [num for num in visits if num not in patients and num not in family_of]
        _add_rows(client, pool, patients, family_of, missing)
    open_claims: dict[int, int] = {}
    for claim in claims:
        family = family_of.get(_patnum(claim))
        if family is not None and claim.get("ClaimType") not in NOT_A_CLAIM:
            open_claims[family] = open_claims.get(family, 0) + 1
    if not full:
        touched = {family_of[num] for num in patients}
        touched |= {family_of[_patnum(s)] for s in statements
                    if _patnum(s) in family_of and od_stamp(s.get("DateTStamp")) >= stamp}  # fmt: skip
        touched |= {g for g in set(open_claims) | {int(x) for x in known.open_claims if x.isdigit()}
                    if open_claims.get(g, 0) != known.open_claims.get(str(g), 0)}  # fmt: skip
        touched |= {family_of[num] for num in visits if num in family_of}
        _add_rows(client, pool, patients, family_of,
                  [num for num in touched | {n for n in visits if n in family_of} if num not in patients])  # fmt: skip
        families = {g for g in touched if g in patients}
        family_requests = _family_requests(client, pool, families)
    answers = _collect(family_requests)
    if full:
        answers.update({("aging", g): aging for g, aging in report.items() if g in families})
    # A family Open Dental no longer knows (its guarantor deleted or merged meanwhile) is left out whole.
    gone = {g for (_, g), answer in answers.items() if answer is _GONE}
    if gone:
        patients = {num: p for num, p in patients.items() if family_of.get(num) not in gone}
        families -= gone
        answers = {key: answer for key, answer in answers.items() if key[1] not in gone}
    return OpenDentalRead(
        full=full, server_time=server_time, patients=patients, family_of=family_of,
        aging={g: answer for (kind, g), answer in answers.items() if kind == "aging"},
        plans={g: answer for (kind, g), answer in answers.items() if kind == "plans"},
        statements=statements, open_claims=open_claims, visits=visits, families=families,
        requests=client.requests_made,
    )  # fmt: skip


def report_aging(row: dict[str, Any]) -> dict[str, Any]:
    """A row of Reports GET Aging in the shape of AccountModules GET Aging: the report's estimate of pending
    insurance payments plus write-offs is what the account module calls InsEst ("EstBal: ... after
    subtracting pending insurance amounts and write-offs" = Total - InsEst)."""
    return {
        "Bal_0_30": row.get("Bal_0_30"), "Bal_31_60": row.get("Bal_31_60"), "Bal_61_90": row.get("Bal_61_90"),
        "BalOver90": row.get("BalOver90"), "Total": row.get("BalTotal"),
        "InsEst": od_money(row.get("InsPayEst")) + od_money(row.get("InsWoEst")),
    }  # fmt: skip


def patient_portion(aging: dict[str, Any]) -> Any:
    buckets = sum(od_money(aging.get(name)) for name in ("Bal_0_30", "Bal_31_60", "Bal_61_90", "BalOver90"))
    return buckets - od_money(aging.get("InsEst"))


def _family_requests(
    client: OpenDentalClient, pool: ThreadPoolExecutor, guarantors: Iterable[int]
) -> dict[tuple[str, int], Future[Any]]:
    """A family's aging (AccountModules GET Aging) and payment plans (PayPlans GET by Guarantor)."""
    futures: dict[tuple[str, int], Future[Any]] = {}
    for g in sorted(guarantors):
        futures["aging", g] = pool.submit(_unless_gone, client.get, f"accountmodules/{g}/Aging")
        futures["plans", g] = pool.submit(_unless_gone, client.get_all, "payplans", {"Guarantor": g})
    return futures


def _unless_gone(fn: Callable[..., Any], *args: Any) -> Any:
    """The answer, or ``_GONE`` for a patient Open Dental no longer has (404) or will not touch (400: "Patient
    is deleted"), which may happen between the list and the request; anything else still fails the read."""
    try:
        return fn(*args)
    except OpenDentalRefused as exc:
        if exc.status in (400, 404):
            return _GONE
        raise


def _add_rows(
    client: OpenDentalClient, pool: ThreadPoolExecutor, patients: dict[int, dict[str, Any]],
    family_of: dict[int, int], nums: Iterable[int],
) -> None:  # fmt: skip
    rows = _collect({num: pool.submit(_unless_gone, client.get, f"patients/{num}") for num in nums})
    patients.update(_live(row for row in rows.values() if isinstance(row, dict)))
    family_of.update({num: _patnum(p, "Guarantor") for num, p in patients.items()})


def plan_is_open(plan: dict[str, Any]) -> bool:
    """An open patient payment plan (PayPlans GET: "An Insurance payment plan has a PlanNum ... greater then
    zero"): insurance paying in installments does not put the patient on a plan."""
    return not od_bool(plan.get("IsClosed")) and not int(plan.get("PlanNum") or 0)
