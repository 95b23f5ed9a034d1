"""Payment links in stored messages (P1, T4, issue 11): a message's body and context never hold the link's
token. Where the link goes, a body holds ``PAY_URL``; its context holds ``pay_ref``, a random reference
from which only the server, with its secret key, derives the token (``payments.links``). The link is
written into the text at the last moment, for the provider (``with_pay_url``), the letter or the patient;
the admin shows it masked.

``notifications`` does not import ``payments``: the owning app registers the one function that turns a
reference into the public URL (``register_pay_url``), as it does for other callbacks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings

# A private-use character pair: never in a template or a PMS value, and one placeholder however it was spelt.
PAY_URL = "\ue000pay_url\ue000"

_pay_url_for_ref: Callable[[str], str] | None = None


def register_pay_url(function: Callable[[str], str]) -> None:
    global _pay_url_for_ref
    _pay_url_for_ref = function


def pay_url(context: Mapping[str, Any]) -> str:
    """The payment link of a message with ``context``: derived from its ``pay_ref``; a context written before
    references (or by hand) may carry the URL itself; '' when it has none."""
    ref = context.get("pay_ref")
    if ref and _pay_url_for_ref is not None:
        return _pay_url_for_ref(str(ref))
    url = context.get("pay_url")
    return str(url) if url and url != PAY_URL else ""


def with_pay_url(text: str, context: Mapping[str, Any]) -> str:
    """``text`` with its payment link written in (for the provider, the letter)."""
    return text.replace(PAY_URL, pay_url(context)) if PAY_URL in text else text


def masked(text: str) -> str:
    """``text`` as staff may see it: the link's place is shown, its token is not."""
    return text.replace(PAY_URL, f"{settings.PUBLIC_BASE_URL}/p/•••/")
