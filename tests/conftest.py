from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _service_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        _service_missing("this test needs PostgreSQL (set DATABASE_URL)")
    if item.get_closest_marker("redis"):
        if not settings.REDIS_URL:
            _service_missing("this test needs Redis (set REDIS_URL)")
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
        except redis.exceptions.ConnectionError as exc:
            _service_missing(f"Redis at {settings.REDIS_URL} does not answer: {exc}")


def _restore_data_migration_rows() -> None:
    """Put back the rows data migrations ship (system templates, dunning presets): the flush that ends a
    transactional test (transaction=True) empties every table, and tests that run after it expect them."""
    import importlib

    from django.apps import apps

    from notifications.models import Template

    if not Template.objects.filter(organization__isnull=True).exists():
        importlib.import_module("notifications.migrations.0002_system_templates").create_defaults(apps, None)
    for restore in DATA_MIGRATION_RESTORERS:
        restore(apps)


def _restore_dunning_presets(apps: Any) -> None:
    import importlib

    if not apps.get_model("dunning", "Preset").objects.filter(built_in=True).exists():
        importlib.import_module("dunning.migrations.0002_presets").create_presets(apps, None)


def _restore_template_translations(apps: Any) -> None:
    import importlib

    if not apps.get_model("notifications", "TemplateTranslation").objects.filter(organization=None).exists():
        module = importlib.import_module("notifications.migrations.0006_template_translations_sms_consent")
        module.create_spanish_defaults(apps, None)


# Further data-migration restorers (module path, function) are added here as apps ship data.
DATA_MIGRATION_RESTORERS: list[Callable[[Any], None]] = [
    _restore_dunning_presets,
    _restore_template_translations,
]


@pytest.fixture(autouse=True)
def _data_migration_rows(
    request: pytest.FixtureRequest, django_db_setup: None, django_db_blocker: Any
) -> None:
    if request.node.get_closest_marker("django_db") is None:
        return
    with django_db_blocker.unblock():
        _restore_data_migration_rows()


@pytest.fixture
def feed_bytes() -> Callable[..., bytes]:
    """Build a feed document as bytes: ``feed_bytes(patients=[...], statements=[...])``."""

    def build(
        *,
        organization: str | None = "smile-dental",
        generated_at: str = "2026-11-24T06:00:00Z",
        patients: list[dict[str, Any]] | None = None,
        statements: list[dict[str, Any]] | None = None,
    ) -> bytes:
        document: dict[str, Any] = {"generated_at": generated_at, "patients": patients or [],
                                    "statements": statements or []}  # fmt: skip
        if organization is not None:
            document["organization"] = organization
        return json.dumps(document).encode()

    return build


@pytest.fixture
def write_feed(tmp_path: Path, feed_bytes: Callable[..., bytes]) -> Callable[..., Path]:
    def write(**kwargs: Any) -> Path:
        path = tmp_path / f"feed-{datetime.now().timestamp()}.json"
        path.write_bytes(feed_bytes(**kwargs))
        return path

    return write
