from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from payments.gateway import ChargeResult, SandboxGateway, get_gateway, luhn_valid

if TYPE_CHECKING:
    from pytest_django.fixtures import Settings

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


def charge(card_number: str, *, exp_month: int = 12, exp_year: int = 2030, cvc: str = "123") -> ChargeResult:
    return SandboxGateway(now=NOW).charge(
        amount=Decimal("25.00"), card_number=card_number, exp_month=exp_month, exp_year=exp_year, cvc=cvc,
        reference="practice:S-1",
    )  # fmt: skip


def test_the_4242_test_card_is_approved_with_its_last_four_digits() -> None:
    result = charge("4242 4242 4242 4242")

    assert result.approved
    assert result.last4 == "4242"
    assert result.reference.startswith("sbx_")


def test_the_0002_test_card_is_declined() -> None:
    result = charge("4000 0000 0000 0002")

    assert not result.approved
    assert result.last4 == "0002"
    assert "declined" in result.message


@pytest.mark.parametrize("number", ["5555555555554444", "378282246310005", "6011-1111-1111-1117"])
def test_any_other_luhn_valid_number_is_approved(number: str) -> None:
    assert charge(number).approved


@pytest.mark.parametrize("number", ["4242424242424241", "1234", "4242 4242 4242 424x", ""])
def test_a_luhn_invalid_number_is_declined_as_invalid(number: str) -> None:
    result = charge(number)

    assert not result.approved
    assert "card number is invalid" in result.message


def test_a_card_that_expired_last_month_is_declined_and_one_expiring_this_month_is_not() -> None:
    expired = charge("4242424242424242", exp_month=10, exp_year=2026)
    this_month = charge("4242424242424242", exp_month=11, exp_year=2026)

    assert not expired.approved
    assert "expired" in expired.message
    assert this_month.approved


@pytest.mark.parametrize(("exp_month", "cvc"), [(13, "123"), (0, "123"), (12, "12"), (12, "12a")])
def test_a_bad_expiry_month_or_security_code_is_declined(exp_month: int, cvc: str) -> None:
    assert not charge("4242424242424242", exp_month=exp_month, cvc=cvc).approved


def test_luhn_check() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424243")
    assert not luhn_valid("42424242424a4242")


def test_the_card_number_and_security_code_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    result = charge("4242424242424242", cvc="987")

    assert result.approved
    assert "4242424242424242" not in caplog.text
    assert "987" not in caplog.text
    assert "4242424242424242" not in repr(result)


def test_the_sandbox_is_the_default_gateway(settings: Settings) -> None:
    if hasattr(settings, "PAYMENT_GATEWAY"):
        del settings.PAYMENT_GATEWAY

    gateway = get_gateway()

    assert isinstance(gateway, SandboxGateway)
    assert gateway.name == "sandbox"


class AlwaysDeclines:
    name = "test"

    def charge(self, **kwargs: object) -> ChargeResult:
        return ChargeResult(approved=False, reference="t_1", last4="0000", message="No.")


def test_the_gateway_comes_from_the_payment_gateway_setting(settings: Settings) -> None:
    settings.PAYMENT_GATEWAY = "tests.payments.test_gateway.AlwaysDeclines"

    assert isinstance(get_gateway(), AlwaysDeclines)
