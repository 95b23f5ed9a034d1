"""Laptop settings: the embedded default (SQLite, filesystem broker), DEBUG on unless told otherwise."""

from __future__ import annotations

from dunning_project.env import env_bool

from .base import *  # noqa: F403
from .base import SECRET_KEY, VAR_DIR

DEBUG = env_bool("DEBUG", default=True)
# A development-only key; production.py refuses to start with it.
SECRET_KEY = SECRET_KEY or "insecure-local-development-key-do-not-use-in-production"

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

VAR_DIR.mkdir(parents=True, exist_ok=True)
# The console backend prints each email on the worker's log, which is the offline "send" of the embedded default.
EMAIL_ENABLED = True
