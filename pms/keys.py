"""The PMS keys at rest: Fernet tokens (cryptography) under ``PMS_KEYS_FERNET_KEY``.

The variable holds one Fernet key, or several separated by commas to rotate: the first encrypts, every one
decrypts (MultiFernet): a new key goes first, and the old one stays after it until every organization's keys
have been set again. The key is not derived from SECRET_KEY: rotating the secret
key (sessions, links) must not make every stored PMS key unreadable.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class PmsKeyError(Exception):
    """The keys cannot be stored or read: the Fernet key is missing or is not the one they were stored with."""


def _fernet() -> MultiFernet:
    raw = getattr(settings, "PMS_KEYS_FERNET_KEY", "") or ""
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if not keys:
        raise PmsKeyError(
            "PMS_KEYS_FERNET_KEY is not set: it encrypts the PMS developer and customer keys at rest "
            "(docs/operations.md, Open Dental)"
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise PmsKeyError(
            "PMS_KEYS_FERNET_KEY is not a Fernet key (32 url-safe base64-encoded bytes; make one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        ) from None


def secret_encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise PmsKeyError(
            "a stored PMS key cannot be decrypted with PMS_KEYS_FERNET_KEY (was the variable changed? keep the "
            "old key after the new one, comma-separated, until the keys are set again)"
        ) from None
