"""Laptop settings: the embedded default (SQLite, filesystem broker), DEBUG on unless told otherwise."""

from __future__ import annotations

from dunning_project.env import env_bool

from .base import *  # noqa: F403
from .base import EMAIL_BACKEND, EMAIL_ENABLED, SECRET_KEY, VAR_DIR

DEBUG = env_bool("DEBUG", default=True)
# A development-only key; production.py refuses to start with it.
SECRET_KEY = SECRET_KEY or "insecure-local-development-key-do-not-use-in-production"

VAR_DIR.mkdir(parents=True, exist_ok=True)
# With no ESP configured, the console backend prints each email on the worker's log: the offline "send" of
# the embedded default. A configured ESP (ANYMAIL_ESP and its variables) is used as it is.
if not EMAIL_ENABLED:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    EMAIL_ENABLED = True
