"""Settings for ``python -m bench``: the project's base settings on the scratch database the harness made.

``bench/__main__.py`` points ``DATABASE_URL`` at the scratch database before Django starts; the Celery
worker of the send pipeline gets the same module and environment. Quiet logs, a fast password hasher (the
dashboard workload logs a user in), and a queue of its own on the developer's Redis.
"""

from __future__ import annotations

from bench.harness import celery_queue
from dunning_project.settings.base import *  # noqa: F403
from dunning_project.settings.base import SECRET_KEY

DEBUG = False
SECRET_KEY = SECRET_KEY or "bench-only-secret-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PUBLIC_BASE_URL = "http://testserver"
ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# The harness's tasks never mix with a developer's worker on the same Redis.
CELERY_TASK_DEFAULT_QUEUE = celery_queue()
