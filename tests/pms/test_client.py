"""The Open Dental client against the fake Open Dental server (a real HTTP server, the documented shapes):
authorization, Open Dental's paging, throttling and retries, and POSTs that are never repeated blindly.

Conventions from https://www.opendental.com/site/apiimplementation.html (Pagination: "If your result is
exactly 100 rows, then perform sequential GETs with offsets until your result is less than 100 rows") and
https://www.opendental.com/site/apisetup.html (the two keys in the Authorization header)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pms.opendental.client import (
    OpenDentalAuthError,
    OpenDentalClient,
    OpenDentalRefused,
    OpenDentalUnavailable,
)
from tests.fakes.opendental_server import FakeOpenDental


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeOpenDental, slept: list[float]) -> OpenDentalClient:
    return OpenDentalClient(base_url=fake.base_url, developer_key=fake.developer_key, customer_key=fake.customer_key,
                            sleep=slept.append, max_attempts=4, backoff=0.5)  # fmt: skip


def test_every_request_carries_the_developer_and_customer_keys(fake, client):
    fake.add_patient()
    client.get("patients/1")
    (request,) = fake.requests
    assert request.authorization == f"ODFHIR {fake.developer_key}/{fake.customer_key}"
    assert request.path == "/patients/1"


@pytest.mark.parametrize(("patients", "offsets"), [(250, [None, "100", "200"]), (200, [None, "100", "200"]),
                                                   (99, [None])])  # fmt: skip
def test_lists_are_paged_with_offset_until_a_short_page(fake, client, patients, offsets):
    for _ in range(patients):
        fake.add_patient()
    items = client.get_all("patients/Simple")
    assert [p["PatNum"] for p in items] == list(range(1, patients + 1))
    assert [r.params.get("Offset") for r in fake.requests] == offsets
    assert all("Limit" not in r.params for r in fake.requests)


def test_a_429_waits_the_retry_after_and_tries_again(fake, client, slept):
    fake.add_patient()
    fake.fail_next(status=429, retry_after="7")
    assert client.get("patients/1")["PatNum"] == 1
    assert slept == [7.0]
    assert [r.status for r in fake.requests] == [429, 200]


def test_server_errors_are_retried_with_growing_backoff(fake, client, slept):
    fake.add_patient()
    fake.fail_next(status=500, times=2)
    fake.fail_next(status=503)
    assert client.get("patients/1")["PatNum"] == 1
    assert len(slept) == 3 and slept[0] < slept[1] < slept[2]
    assert slept[0] <= 0.5 and slept[2] <= 2.0


def test_a_dropped_connection_is_retried(fake, client, slept):
    fake.add_patient()
    fake.drop_next()
    assert client.get("patients/1")["PatNum"] == 1
    assert len(fake.requests) == 2 and len(slept) == 1


def test_it_gives_up_with_a_clear_error_after_every_attempt(fake, client):
    fake.fail_next(status=504, times=10)
    with pytest.raises(OpenDentalUnavailable) as exc:
        client.get("patients/Simple")
    assert "still failing after 4 attempts" in str(exc.value) and "504" in str(exc.value)
    assert len(fake.requests) == 4


def test_wrong_keys_are_not_retried_and_the_error_names_the_keys(fake):
    wrong = OpenDentalClient(
        base_url=fake.base_url, developer_key="nope", customer_key="nope", sleep=lambda s: None
    )
    with pytest.raises(OpenDentalAuthError) as exc:
        wrong.get("patients/Simple")
    assert "pms_developer_key" in str(exc.value) and "pms_customer_key" in str(exc.value)
    assert len(fake.requests) == 1


def test_a_refusal_is_reported_with_open_dentals_explanation(fake, client):
    fake.add_patient(PatStatus="Deleted")
    with pytest.raises(OpenDentalRefused) as exc:
        client.get("accountmodules/1/Aging")
    assert exc.value.status == 400 and "Patient is deleted." in str(exc.value)


def test_a_post_is_not_repeated_after_a_server_error(fake, client, slept):
    fake.add_patient()
    fake.fail_next(status=500, path="/payments")
    with pytest.raises(OpenDentalUnavailable):
        client.post("payments", {"PatNum": 1, "PayAmt": "10.00"})
    assert len(fake.received("POST", "/payments")) == 1 and slept == []


def test_a_post_throttled_with_429_is_sent_again(fake, client, slept):
    fake.add_patient()
    fake.fail_next(status=429, retry_after="2", path="/payments")
    created = client.post("payments", {"PatNum": 1, "PayAmt": "10.00"})
    assert created["PayNum"] == 1 and slept == [2.0]
    assert len(fake.payments) == 1


def test_money_is_read_as_decimal_from_its_text(fake, client):
    fake.add_family(aging={"Bal_0_30": 0.1 + 0.2, "InsEst": 20.0})
    aging = client.get("accountmodules/1/Aging")
    assert aging["Bal_0_30"] == Decimal("0.30000000000000004")
    assert aging["InsEst"] == Decimal("20.0")


def test_date_times_in_params_are_percent_encoded(fake, client):
    client.get_all("patients/Simple", {"DateTStamp": "2026-11-24 05:00:00"})
    assert fake.requests[0].params == {"DateTStamp": "2026-11-24 05:00:00"}
