"""Settings for the test suite: the embedded default unless DATABASE_URL / REDIS_URL are set."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import SECRET_KEY

DEBUG = False
SECRET_KEY = SECRET_KEY or "test-only-secret-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PUBLIC_BASE_URL = "http://testserver"
LOGGING = {"version": 1, "disable_existing_loggers": False}
# A fixed Fernet key for the stored PMS keys (pms/keys.py); production reads its own from the environment.
PMS_KEYS_FERNET_KEY = "hHjHqXFhF2bJ3yPp5wQ2m4sVnO8dT0aLrC6uE9iK1gM="
