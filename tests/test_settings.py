"""Configuration: strict booleans, the embedded default, production refusing unsafe settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dunning_project.env import env_bool

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)]
)
def test_env_bool_accepts_true_and_false(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG", default=not expected) is expected


@pytest.mark.parametrize("raw", ["yes", "on", "ture", "2"])
def test_env_bool_refuses_anything_else(monkeypatch, raw):
    monkeypatch.setenv("SOME_FLAG", raw)
    with pytest.raises(ImproperlyConfigured):
        env_bool("SOME_FLAG", default=False)


def _settings(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
    }
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": module, "VAR_DIR": "/tmp/dunning-settings-test", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_with_no_environment_the_product_runs_on_sqlite_and_the_filesystem_broker():
    result = _settings("dunning_project.settings.local", {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


def test_database_url_and_redis_url_switch_to_postgresql_and_redis():
    result = _settings(
        "dunning_project.settings.local",
        {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/3"},
    )
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://127.0.0.1:6379/3"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "true", "SECRET_KEY": "x" * 50}, "DEBUG must be false"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "insecure-local-development-key-do-not-use-in-production"}, "SECRET_KEY must be set"),
        ({"DEBUG": "maybe", "SECRET_KEY": "x" * 50}, "DEBUG must be 'true' or 'false'"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(env, message):
    result = _settings("dunning_project.settings.production", env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_a_real_secret_key():
    result = _settings("dunning_project.settings.production", {"SECRET_KEY": "k" * 50, "DEBUG": "false"})
    assert result.returncode == 0, result.stderr
