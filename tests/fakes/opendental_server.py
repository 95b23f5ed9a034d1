"""A local fake of Open Dental's REST API for tests and benchmarks: a real HTTP server on 127.0.0.1 that the
real client (``pms/opendental/client.py``) reaches through ``pms_base_url``::

    with FakeOpenDental() as fake:
        guarantor = fake.add_family(aging={"BalOver90": 120.0, "InsEst": 20.0}, dependents=1)
        org_settings ... pms_base_url=fake.base_url, pms_developer_key=fake.developer_key, ...
        fake.requests                    # every request received: method, path, params, body
        fake.payments                    # Payments POSTed (and seeded)
        fake.fail_next(status=429, retry_after="1")   # throttled once
        fake.drop_next(after_processing=True)         # the answer is lost after the work was done

Shapes, parameters and conventions follow Open Dental's API pages (all under https://www.opendental.com/site/):

- apispecification.html / apisetup.html: ``Authorization: ODFHIR {DeveloperKey}/{CustomerKey}``, else 401.
- apiimplementation.html: lists answer at most 100 items, ``Offset`` (and ``Limit``) page them; booleans are
  "true"/"false" strings; dates "yyyy-MM-dd" with 0001-01-01 for none.
- apipatients.html: Patients GET (single) and GET Simple (``DateTStamp``: only patients altered after it; each
  item carries ``serverDateTime``); ``BalTotal`` is the family's total, 0 unless the patient is the guarantor.
- apiaccountmodules.html: AccountModules GET Aging for a patient and their family (Bal_0_30 … BalOver90,
  Total, InsEst, EstBal, PatEstBal, Unearned); 400 for a deleted patient, 404 for an unknown one.
- apireports.html: Reports GET Aging, the A/R aging report of every guarantor (Bal_0_30 … BalOver90,
  BalTotal, InsWoEst, InsPayEst, PatientPortion = BalTotal - InsPayEst - InsWoEst), paged.
- apipayplans.html: PayPlans GET needs PatNum or Guarantor; IsClosed, PlanNum (insurance plans > 0).
- apistatements.html: Statements GET (PatNum optional) with Mode_, IsSent, IsBalValid, BalTotal, InsEst.
- apiclaims.html: Claims GET by PatNum, ClaimStatus (U, H, W, S, R, I) or SecDateTEdit.
- apiappointments.html: Appointments GET by AptStatus, dateStart/dateEnd, DateTStamp, PatNum.
- apipayments.html: Payments GET (PatNum, DateEntry on or after), Payments POST (PatNum and PayAmt required;
  applied to the family's charges oldest first, "FIFO"); 400 missing fields, 404 patient not found.

Money is kept the way Open Dental keeps it, in doubles: a payment of 0.10 off 0.40 leaves
0.30000000000000004 in the aging, and the client must read that as 0.30.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAKE_DEVELOPER_KEY = "NFF6i0KrXrxDkZHt"
FAKE_CUSTOMER_KEY = "VzkmZEaUWOjnQX2z"
API_PREFIX = "/api/v1"
PAGE_LIMIT = 100
STAMP = "%Y-%m-%d %H:%M:%S"
BUCKETS = ("BalOver90", "Bal_61_90", "Bal_31_60", "Bal_0_30")  # oldest first, the order payments apply in


@dataclass
class Received:
    method: str
    path: str  # relative to /api/v1, e.g. "/patients/Simple"
    params: dict[str, str]
    authorization: str
    body: Any = None
    status: int = 0


@dataclass
class _Failure:
    status: int  # 0: drop the connection without answering
    path: str | None
    retry_after: str | None
    after_processing: bool = False


@dataclass
class _Office:
    patients: dict[int, dict[str, Any]] = field(default_factory=dict)
    aging: dict[int, dict[str, float]] = field(default_factory=dict)  # guarantor -> buckets and InsEst
    payplans: list[dict[str, Any]] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    appointments: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Encoded:
    body: bytes


def _page(items: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    offset = int(params.get("Offset") or 0)
    limit = min(int(params.get("Limit") or PAGE_LIMIT), PAGE_LIMIT)
    return items[offset : offset + limit]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        answer = self.server.fake._handle(method, self.path, self.headers.get("Authorization", ""), raw)
        if answer is None:  # the PMS stopped answering: close without a word
            self.close_connection = True
            return
        status, payload, headers = answer
        if isinstance(payload, _Encoded):
            body = payload.body
        else:
            body = json.dumps(payload).encode() if payload is not None else b""
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json; charset=utf-8",
                f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: FakeOpenDental


class FakeOpenDental:
    """Open Dental's API for one office, on an ephemeral port."""

    def __init__(
        self, *, developer_key: str = FAKE_DEVELOPER_KEY, customer_key: str = FAKE_CUSTOMER_KEY,
        now: datetime = datetime(2026, 11, 24, 5, 0, 0),
    ) -> None:  # fmt: skip
        self.developer_key = developer_key
        self.customer_key = customer_key
        self.now = now  # the office's clock (Open Dental's date-times are local): serverDateTime, DateTStamp
        self.office = _Office()
        self.requests: list[Received] = []
        self.record = True
        self._failures: deque[_Failure] = deque()
        self._die_after: int | None = None
        self._lock = threading.RLock()
        # Answers to list queries, kept until the next write (a 20 000-patient office is paged 200 times).
        self._lists: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self._encoded: dict[tuple[str, int], bytes] = {}
        self._plans_by_guarantor: dict[str, list[dict[str, Any]]] | None = None
        self._next = {
            "PatNum": 1,
            "StatementNum": 1,
            "PayPlanNum": 1,
            "ClaimNum": 1,
            "AptNum": 1,
            "PayNum": 1,
        }
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._port = 0

    # lifecycle

    def start(self) -> FakeOpenDental:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def start_in_process(self, *, processes: int = 2) -> FakeOpenDental:
        """Serve from forked child processes sharing one listening socket (benchmarks: the server then takes
        none of the client's GIL, as a practice's Open Dental runs on its own machine). The data is the one
        of the moment of the fork, and what the children receive stays in them: ``requests`` is not filled."""
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._port = int(server.server_address[1])
        self.record = False  # nobody could read it
        context = multiprocessing.get_context("fork")
        self._processes = [
            context.Process(target=_serve_child, args=(server,), daemon=True) for _ in range(processes)
        ]
        for process in self._processes:
            process.start()
        server.server_close()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for process in self._processes:
            process.terminate()
            process.join()
        self._processes = []

    def __enter__(self) -> FakeOpenDental:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:  # fmt: skip
        self.stop()

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeOpenDental is not running")
        return f"http://127.0.0.1:{self._port}{API_PREFIX}"

    # the office's data

    def _num(self, kind: str) -> int:
        self._lists.clear()
        self._encoded.clear()
        self._plans_by_guarantor = None
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def stamp(self) -> str:
        return self.now.strftime(STAMP)

    def advance(self, **delta: float) -> None:
        with self._lock:
            self.now += timedelta(**delta)

    def add_patient(self, *, guarantor: int | None = None, **fields: Any) -> dict[str, Any]:
        """A patient in Patients GET (single)'s shape (the page's example values as defaults)."""
        with self._lock:
            num = int(fields.pop("PatNum", 0)) or self._num("PatNum")
            self._next["PatNum"] = max(self._next["PatNum"], num + 1)
            record = {
                "PatNum": num, "LName": "Smith", "FName": "Jane", "MiddleI": "", "Preferred": "", "PatStatus": "Patient",
                "Gender": "Female", "Position": "Single", "Birthdate": "1976-05-24", "SSN": "", "Address": "125 Satin Heights",
                "Address2": "", "City": "San Jose", "State": "CA", "Zip": "95123", "HmPhone": "(408)555-0177",
                "WkPhone": "", "WirelessPhone": "(408)555-0142", "Guarantor": guarantor or num,
                "Email": "smithfam@yahoo.com", "EstBalance": 0.0, "PriProv": 1, "priProvAbbr": "DOC", "SecProv": 0,
                "secProvAbbr": "", "BillingType": "Standard Account", "ImageFolder": "", "FamFinUrgNote": "",
                "ChartNumber": "", "MedicaidID": "", "BalTotal": 0.0, "DateFirstVisit": "2021-12-16", "ClinicNum": 0,
                "clinicAbbr": "", "Ward": "", "PreferConfirmMethod": "None", "PreferContactMethod": "WirelessPh",
                "PreferRecallMethod": "TextMessage", "Language": "", "AdmitDate": "0001-01-01", "siteDesc": "",
                "DateTStamp": self.stamp(), "SuperFamily": 0, "TxtMsgOk": "Unknown", "SecDateEntry": "2021-12-04",
            }  # fmt: skip
            record.update(fields)
            self.office.patients[num] = record
            return record

    def add_family(
        self, *, aging: dict[str, float] | None = None, dependents: int = 0, **guarantor_fields: Any
    ) -> dict[str, Any]:
        """A guarantor (and ``dependents`` more patients of the family) with the family's aging on the
        guarantor; returns the guarantor's record."""
        with self._lock:
            head = self.add_patient(**guarantor_fields)
            for index in range(dependents):
                self.add_patient(
                    guarantor=head["PatNum"], FName=f"Kid{index + 1}", LName=head["LName"], Birthdate="2012-03-04",
                    Email="", WirelessPhone="", Position="Child",
                )  # fmt: skip
            self.set_aging(head["PatNum"], **(aging or {}))
            return head

    def set_aging(self, guarantor: int, **values: float) -> None:
        with self._lock:
            aging = {name: 0.0 for name in (*BUCKETS, "InsEst", "InsWoEst")}
            aging.update(values)
            self.office.aging[guarantor] = aging
            self._touch_family(guarantor)

    def _touch_family(self, guarantor: int) -> None:
        self._lists.clear()
        self._encoded.clear()
        self._plans_by_guarantor = None
        aging = self.office.aging.get(guarantor, {})
        total = sum(aging.get(name, 0.0) for name in BUCKETS)
        patient = self.office.patients.get(guarantor)
        if patient is not None:
            patient["BalTotal"] = total
            patient["EstBalance"] = total
            patient["DateTStamp"] = self.stamp()

    def update_patient(self, num: int, **fields: Any) -> None:
        with self._lock:
            self._lists.clear()
            self._encoded.clear()
            self._plans_by_guarantor = None
            self.office.patients[num].update(fields)
            self.office.patients[num]["DateTStamp"] = self.stamp()

    def add_statement(self, patnum: int, **fields: Any) -> dict[str, Any]:
        with self._lock:
            record = {
                "StatementNum": self._num("StatementNum"), "PatNum": patnum, "DateSent": self.now.date().isoformat(),
                "DateRangeFrom": "0001-01-01", "DateRangeTo": self.now.date().isoformat(), "Note": "", "NoteBold": "",
                "Mode_": "Mail", "HidePayment": "false", "SinglePatient": "false", "Intermingled": "false",
                "IsSent": "true", "DocNum": 0, "DateTStamp": self.stamp(), "IsReceipt": "false", "IsInvoice": "false",
                "IsInvoiceCopy": "false", "SuperFamily": 0, "IsBalValid": "true", "InsEst": 0.0, "BalTotal": 0.0,
                "StatementType": "NotSet",
            }  # fmt: skip
            record.update(fields)
            self.office.statements.append(record)
            return record

    def add_payplan(self, guarantor: int, **fields: Any) -> dict[str, Any]:
        with self._lock:
            record = {
                "PayPlanNum": self._num("PayPlanNum"), "PatNum": guarantor, "Guarantor": guarantor,
                "PayPlanDate": "2026-04-15", "APR": 0, "Note": "", "PlanNum": 0, "CompletedAmt": 0, "InsSubNum": 0,
                "PaySchedule": "Monthly", "NumberOfPayments": 10, "PayAmt": 0, "DownPayment": 0, "IsClosed": "false",
                "PlanCategory": 0, "planCategory": "", "IsDynamic": "false", "ChargeFrequency": "Monthly",
                "DatePayPlanStart": "2026-04-15", "IsLocked": "false", "DateInterestStart": "0001-01-01",
                "DynamicPayPlanTPOption": "None", "principalAmount": 640,
            }  # fmt: skip
            record.update(fields)
            self.office.payplans.append(record)
            return record

    def add_claim(self, patnum: int, **fields: Any) -> dict[str, Any]:
        with self._lock:
            record = {
                "ClaimNum": self._num("ClaimNum"), "PatNum": patnum, "DateService": "2026-11-02", "DateSent": "2026-11-03",
                "ClaimStatus": "S", "DateReceived": "0001-01-01", "PlanNum": 19, "ProvTreat": 1, "ClaimFee": 250.0,
                "InsPayEst": 200.0, "InsPayAmt": 0.0, "DedApplied": 0.0, "ClaimNote": "", "ClaimType": "P",
                "ProvBill": 1, "PlaceService": "Office", "WriteOff": 0.0, "ClaimForm": "4", "InsSubNum": "24",
                "SecDateTEdit": self.stamp(),
            }  # fmt: skip
            record.update(fields)
            self.office.claims.append(record)
            return record

    def add_appointment(self, patnum: int, when: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            record = {
                "AptNum": self._num("AptNum"), "PatNum": patnum, "AptStatus": "Complete", "Pattern": "//XXXX//",
                "Confirmed": 19, "confirmed": "Not Called", "Op": 3, "Note": "", "ProvNum": 1, "provAbbr": "DOC1",
                "AptDateTime": when, "IsNewPatient": "false", "ProcDescript": "PerEx, Pro", "ClinicNum": 0,
                "DateTStamp": self.stamp(),
            }  # fmt: skip
            record.update(fields)
            self.office.appointments.append(record)
            return record

    @property
    def payments(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.office.payments)

    def received(self, method: str, path_prefix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # failures on demand

    def fail_next(
        self, *, status: int = 500, times: int = 1, path: str | None = None, retry_after: str | None = None
    ) -> None:
        """Answer the next ``times`` requests (to paths starting with ``path``) with ``status``."""
        with self._lock:
            self._failures.extend(_Failure(status, path, retry_after) for _ in range(times))

    def drop_next(self, *, times: int = 1, path: str | None = None, after_processing: bool = False) -> None:
        """Close the connection without answering; ``after_processing``: after doing the work (a POST that
        reached Open Dental whose answer was lost)."""
        with self._lock:
            self._failures.extend(_Failure(0, path, None, after_processing) for _ in range(times))

    def die_after(self, requests: int | None) -> None:
        """Stop answering (close every connection) once ``requests`` more requests have been answered."""
        with self._lock:
            self._die_after = None if requests is None else len(self.requests) + requests

    # request handling (the server's threads)

    def _handle(
        self, method: str, target: str, authorization: str, raw: bytes
    ) -> tuple[int, Any, dict[str, str]] | None:
        parts = urlsplit(target)
        params = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path[len(API_PREFIX) :] if parts.path.startswith(API_PREFIX) else parts.path
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = Received(method=method, path=path, params=params, authorization=authorization, body=body)
        with self._lock:
            if self.record:
                self.requests.append(record)
            if self._die_after is not None and len(self.requests) > self._die_after:
                return None
            if authorization != f"ODFHIR {self.developer_key}/{self.customer_key}":
                record.status = 401
                return 401, "Invalid Authorization header.", {}
            failure = next((f for f in self._failures if f.path is None or path.startswith(f.path)), None)
            if failure is not None:
                self._failures.remove(failure)
        if failure is not None and not failure.after_processing:
            if failure.status == 0:
                return None
            record.status = failure.status
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return failure.status, {"message": HTTPStatus(failure.status).phrase}, headers
        with self._lock:
            status, payload, headers = self._route(method, path, params, body)
        record.status = status
        if failure is not None:  # after_processing: the work is done, the answer is lost
            return None
        return status, payload, headers

    def _stamped_page(self, items: list[dict[str, Any]], params: dict[str, str], key: str) -> _Encoded:
        """A page of records, each with serverDateTime, from records encoded once between writes (the
        benchmark's office is paged 200 times; its server must not be what is measured)."""
        tail = f', "serverDateTime": "{self.stamp()}"}}'.encode()
        parts = []
        for record in _page(items, params):
            encoded = self._encoded.get((key, record[key]))
            if encoded is None:
                encoded = self._encoded[key, record[key]] = json.dumps(record).encode()[:-1]
            parts.append(encoded + tail)
        return _Encoded(b"[" + b", ".join(parts) + b"]")

    def _route(
        self, method: str, path: str, params: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        segments = [s for s in path.split("/") if s]
        office = self.office
        server_time = self.stamp()
        if method == "POST" and segments == ["payments"]:
            return self._post_payment(body)
        if method != "GET" or not segments:
            return 404, {"message": "Not found"}, {}
        head = segments[0]
        key = (path, *sorted(f"{k}={v}" for k, v in params.items() if k not in ("Offset", "Limit")))
        if head == "patients" and len(segments) == 2 and segments[1] == "Simple":
            items = self._lists.get(key)
            if items is None:
                items = sorted(office.patients.values(), key=lambda p: p["PatNum"])
                if params.get("DateTStamp"):
                    items = [p for p in items if p["DateTStamp"] > params["DateTStamp"]]
                if params.get("PatStatus"):
                    items = [p for p in items if p["PatStatus"] == params["PatStatus"]]
                self._lists[key] = items
            return 200, self._stamped_page(items, params, "PatNum"), {}
        if head == "patients" and len(segments) == 2:
            patient = office.patients.get(int(segments[1])) if segments[1].isdigit() else None
            if patient is None:
                return 404, {"message": "Patient not found."}, {}
            return 200, dict(patient), {}
        if head == "accountmodules" and len(segments) == 3 and segments[2] == "Aging":
            patient = office.patients.get(int(segments[1])) if segments[1].isdigit() else None
            if patient is None:
                return 404, {"message": "Patient not found."}, {}
            if patient["PatStatus"] == "Deleted":
                return 400, {"message": "Patient is deleted."}, {}
            aging = office.aging.get(patient["Guarantor"], {})
            total = sum(aging.get(name, 0.0) for name in BUCKETS)
            ins = aging.get("InsEst", 0.0)
            return 200, {
                "Bal_0_30": aging.get("Bal_0_30", 0.0), "Bal_31_60": aging.get("Bal_31_60", 0.0),
                "Bal_61_90": aging.get("Bal_61_90", 0.0), "BalOver90": aging.get("BalOver90", 0.0), "Total": total,
                "InsEst": ins, "EstBal": total - ins, "PatEstBal": total - ins, "Unearned": 0.0,
            }, {}  # fmt: skip
        if head == "reports" and segments[1:] == ["Aging"]:
            # The A/R aging report: every family with a balance, its aging calculated now; InsEst of the
            # account module is the pending insurance payment plus the write-off estimate here.
            rows = self._lists.get(key)
            if rows is None:
                rows = []
                for guarantor, aging in sorted(office.aging.items()):
                    patient = office.patients.get(guarantor)
                    buckets = [aging.get(name, 0.0) for name in BUCKETS]
                    if patient is None or patient["PatStatus"] == "Deleted" or not any(buckets):
                        continue
                    total, write_off = sum(buckets), aging.get("InsWoEst", 0.0)
                    rows.append({
                        "PatNum": guarantor, "patName": f"{patient['LName']}, {patient['FName']} ",
                        "Bal_0_30": aging.get("Bal_0_30", 0.0), "Bal_31_60": aging.get("Bal_31_60", 0.0),
                        "Bal_61_90": aging.get("Bal_61_90", 0.0), "BalOver90": aging.get("BalOver90", 0.0),
                        "BalTotal": total, "InsWoEst": write_off, "InsPayEst": aging.get("InsEst", 0.0) - write_off,
                        "PatientPortion": total - aging.get("InsEst", 0.0),
                    })  # fmt: skip
                self._lists[key] = rows
            return 200, _page(rows, params), {}
        if head == "payplans":
            if "PatNum" not in params and "Guarantor" not in params:
                return 400, {"message": "PatNum or Guarantor is required."}, {}
            if self._plans_by_guarantor is None:  # an index until the next write: a sync asks once a family
                self._plans_by_guarantor = {}
                for plan in office.payplans:
                    self._plans_by_guarantor.setdefault(str(plan["Guarantor"]), []).append(plan)
            candidates = (
                self._plans_by_guarantor.get(params["Guarantor"], [])
                if "Guarantor" in params
                else office.payplans
            )
            items = [p for p in candidates if "PatNum" not in params or str(p["PatNum"]) == params["PatNum"]]
            return 200, _page(items, params), {}
        if head == "statements":
            items = [
                s for s in office.statements if "PatNum" not in params or str(s["PatNum"]) == params["PatNum"]
            ]
            return 200, _page(items, params), {}
        if head == "claims":
            items = office.claims
            if "PatNum" in params:
                items = [c for c in items if str(c["PatNum"]) == params["PatNum"]]
            if "ClaimStatus" in params:
                items = [c for c in items if c["ClaimStatus"] == params["ClaimStatus"]]
            if "SecDateTEdit" in params:
                items = [c for c in items if c["SecDateTEdit"] >= params["SecDateTEdit"]]
            return 200, _page(items, params), {}
        if head == "appointments" and key in self._lists:
            return 200, self._stamped_page(self._lists[key], params, "AptNum"), {}
        if head == "appointments":
            items = office.appointments
            if "AptStatus" in params:
                items = [a for a in items if a["AptStatus"] == params["AptStatus"]]
            if "PatNum" in params:
                items = [a for a in items if str(a["PatNum"]) == params["PatNum"]]
            if "dateStart" in params:
                items = [a for a in items if a["AptDateTime"][:10] >= params["dateStart"]]
            if "dateEnd" in params:
                items = [a for a in items if a["AptDateTime"][:10] <= params["dateEnd"]]
            if "DateTStamp" in params:
                items = [a for a in items if a["DateTStamp"] > params["DateTStamp"]]
            self._lists[key] = items
            return 200, self._stamped_page(items, params, "AptNum"), {}
        if head == "payments" and len(segments) == 1:
            items = office.payments
            if "PatNum" in params:
                items = [p for p in items if str(p["PatNum"]) == params["PatNum"]]
            if "DateEntry" in params:
                items = [p for p in items if p["DateEntry"] >= params["DateEntry"]]
            return 200, [{**p, "serverDateTime": server_time} for p in _page(items, params)], {}
        return 404, {"message": f"{path} not found"}, {}

    def _post_payment(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or "PatNum" not in body or "PayAmt" not in body:
            return 400, {"message": "PatNum and PayAmt are required."}, {}
        try:
            patnum = int(body["PatNum"])
            amount = float(body["PayAmt"])
        except (TypeError, ValueError):
            return 400, {"message": "PatNum or PayAmt is invalid."}, {}
        patient = self.office.patients.get(patnum)
        if patient is None:
            return 404, {"message": "Patient not found."}, {}
        if patient["PatStatus"] == "Deleted":
            return 400, {"message": "Patient is deleted."}, {}
        # "Payments apply to outstanding charges in a FIFO order. Overpayments are inserted as unearned income."
        guarantor = patient["Guarantor"]
        aging = self.office.aging.setdefault(guarantor, {name: 0.0 for name in (*BUCKETS, "InsEst")})
        left = amount
        for name in BUCKETS if amount > 0 else ():  # a negative payment (a refund) adds to the newest charges
            taken = min(max(aging.get(name, 0.0), 0.0), left)
            aging[name] = aging.get(name, 0.0) - taken
            left -= taken
        aging["Bal_0_30"] = aging.get("Bal_0_30", 0.0) - left
        self._touch_family(guarantor)
        record = {
            "PayNum": self._num("PayNum"), "PayType": 69, "payType": "Check", "PayDate": str(body.get("PayDate") or self.now.date()),
            "PayAmt": f"{amount:g}", "CheckNum": str(body.get("CheckNum") or ""), "BankBranch": "", "PayNote": str(body.get("PayNote") or ""),
            "PatNum": patnum, "ClinicNum": "0", "DateEntry": self.now.date().isoformat(), "DepositNum": 0, "Receipt": "",
            "IsRecurringCC": "false", "PaymentSource": "API", "ProcessStatus": "OfficeProcessed",
            "RecurringChargeDate": "0001-01-01", "IsCcCompleted": "false",
        }  # fmt: skip
        self.office.payments.append(record)
        return 201, record, {"Location": f"{self.base_url}/payments/{record['PayNum']}"}


def _serve_child(server: _Server) -> None:
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        os._exit(0)  # skip the parent's atexit handlers (its database connections) in the forked child


def populate(fake: FakeOpenDental, *, patients: int, seed: int = 13, today: date = date(2026, 11, 24)) -> int:
    """An office of about ``patients`` patients in families (1 to 5 members), with Open Dental's quirks; about
    a third of the families owe, and those have statements, some plans and claims. Returns the families."""
    rng = random.Random(seed)
    states = [("Salt Lake City", "UT", "84101", "801"), ("Boston", "MA", "02108", "617"), ("Denver", "CO", "80202", "303"),
              ("Chicago", "IL", "60601", "312"), ("Phoenix", "AZ", "85004", "602"), ("Seattle", "WA", "98101", "206")]  # fmt: skip
    made = families = 0
    with fake._lock:
        fake.record = False
        while made < patients:
            size = min(patients - made, rng.choice((1, 1, 2, 2, 3, 3, 4, 5)))
            city, state, zip_code, area = states[families % len(states)]
            owes = rng.random() < 0.35
            n = families
            head = fake.add_patient(
                LName=f"Family{n}", FName=rng.choice(("Ana", "Luis", "Mary", "John", "Wei", "Fatima")),
                Birthdate="0001-01-01" if n % 41 == 0 else f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                Address=f"{n % 9000 + 1} Main St", City=city, State="Utah" if state == "UT" and n % 7 == 0 else state,
                Zip=zip_code.lstrip("0") if n % 5 == 0 else zip_code, WirelessPhone=f"({area})555-{n % 10000:04d}",
                Email="noemail@example.com" if n % 13 == 0 else f"family{n}@example.com",
                TxtMsgOk=("Yes", "No", "Unknown")[n % 3], Language="spa" if n % 6 == 0 else "",
                BillingType="Collections" if n % 97 == 0 else "Standard Account",
                PatStatus="Deceased" if n % 211 == 0 else "Patient",
            )  # fmt: skip
            for index in range(size - 1):
                fake.add_patient(guarantor=head["PatNum"], LName=head["LName"], FName=f"Kid{index + 1}",
                                 Birthdate=f"20{rng.randint(10, 20)}-0{rng.randint(1, 9)}-0{rng.randint(1, 9)}",
                                 Email="", WirelessPhone="", Position="Child", Address=head["Address"], City=city,
                                 State=head["State"], Zip=head["Zip"])  # fmt: skip
            g = head["PatNum"]
            if owes:
                over = round(rng.randint(0, 30000) / 100, 2)
                fake.set_aging(g, Bal_0_30=round(rng.randint(0, 40000) / 100, 2) + (0.1 + 0.2 if n % 9 == 0 else 0),
                               Bal_31_60=round(rng.randint(0, 15000) / 100, 2), BalOver90=over,
                               InsEst=round(rng.randint(0, 5000) / 100, 2))  # fmt: skip
                aging = fake.office.aging[g]
                balance = sum(aging[name] for name in BUCKETS)
                fake.add_statement(g, DateSent=(today - timedelta(days=rng.randint(1, 60))).isoformat(),
                                   Mode_=("Mail", "Email", "Electronic", "InPerson")[n % 4], BalTotal=balance,
                                   InsEst=aging["InsEst"])  # fmt: skip
                if n % 10 == 0:
                    fake.add_payplan(g)
                if n % 6 == 0:
                    fake.add_claim(g + size - 1, ClaimStatus=("S", "W", "U")[n % 3])
            else:
                fake.set_aging(g)
            for member in range(g, g + size):
                if rng.random() < 0.7:
                    fake.add_appointment(
                        member, f"{(today - timedelta(days=rng.randint(1, 700))).isoformat()} 09:30:00"
                    )
            made += size
            families += 1
        fake.record = True
    return families
