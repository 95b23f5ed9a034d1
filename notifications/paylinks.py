"""Payment links in stored messages (P1, T4, issue 11): a message's body and context never hold the link's
token. Where the link goes, a body holds ``PAY_URL``; its context holds ``pay_ref``, a random reference
from which only the server, with its secret key, derives the token (``payments.links``). The link is
written into the text at the last moment, for the provider (``with_pay_url``), the letter or the patient;
the admin shows it masked.

Each message's link also carries a short, non-secret reference to that message (``?m=<ref>``, SPEC §16 V2):
the message's id in base 36. It names which message a patient came from, nothing more: the payment page
credits it only to a message of the link's own campaign, and the token (P1) is unchanged.

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


def pay_url(context: Mapping[str, Any], *, message_id: int | None = None) -> str:
    """The payment link of a message with ``context``: derived from its ``pay_ref``; a context written before
    references (or by hand) may carry the URL itself; '' when it has none. With ``message_id``, the link names
    that message (``?m=``, V2)."""
    ref = context.get("pay_ref")
    url = ""
    if ref and _pay_url_for_ref is not None:
        url = _pay_url_for_ref(str(ref))
    else:
        given = context.get("pay_url")
        url = str(given) if given and given != PAY_URL else ""
    if url and message_id is not None and "?" not in url:
        url = f"{url}?{MESSAGE_PARAMETER}={message_ref(message_id)}"
    return url


def with_pay_url(text: str, context: Mapping[str, Any], *, message_id: int | None = None) -> str:
    """``text`` with its payment link written in (for the provider, the letter)."""
    return text.replace(PAY_URL, pay_url(context, message_id=message_id)) if PAY_URL in text else text


MESSAGE_PARAMETER = "m"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_MAX_REF = 13  # base 36 of the largest bigint


def message_ref(message_id: int) -> str:
    """The short reference of a message in its link (V2): its id in base 36 (``12345`` → ``9ix``)."""
    if message_id < 0:
        raise ValueError("a message id is positive")
    digits = ""
    while True:
        message_id, rest = divmod(message_id, 36)
        digits = _BASE36[rest] + digits
        if not message_id:
            return digits


def message_id_from_ref(ref: str) -> int | None:
    """The message id of a link's ``?m=``; None for anything that is not one."""
    text = (ref or "").strip().lower()
    if not text or len(text) > _MAX_REF or any(c not in _BASE36 for c in text):
        return None
    value = int(text, 36)
    return value if 0 < value < 2**63 else None


def masked(text: str) -> str:
    """``text`` as staff may see it: the link's place is shown, its token is not."""
    return text.replace(PAY_URL, f"{settings.PUBLIC_BASE_URL}/p/•••/")
