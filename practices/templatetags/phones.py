"""``{% load phones %}``: phone numbers as a person reads them (``practices.phones``)."""

from __future__ import annotations

from django import template

from practices.phones import phone_display, phone_masked, phone_tel

register = template.Library()


@register.filter(name="phone")
def phone(value: str | None) -> str:
    """``{{ organization.phone|phone }}`` → "(801) 555-0199"."""
    return phone_display(value)


@register.filter(name="tel")
def tel(value: str | None) -> str:
    """``<a href="tel:{{ organization.phone|tel }}">`` → "+18015550199"."""
    return phone_tel(value)


@register.filter(name="phone_masked")
def masked(value: str | None) -> str:
    """``{{ guarantor.mobile_phone|phone_masked }}`` → "(•••) •••-0199" (T4: staff see the last four)."""
    return phone_masked(value)
