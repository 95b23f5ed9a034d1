"""Environment readers with strict parsing.

django-environ's ``Env.bool`` turns any unrecognised string into ``False``; a typo such as ``DEBUG=ture``
would then silently switch a flag off. ``env_bool`` accepts ``true``/``false`` (and ``1``/``0``) only.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def env_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 'true' or 'false' (or 1/0), got {raw!r}")


def env_str(name: str, *, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_list(name: str, *, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]
