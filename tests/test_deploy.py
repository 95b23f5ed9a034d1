"""Production hardening (issue 11): `check --deploy` prints no warning, and every page carries a
Content-Security-Policy without inline script or style."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_with_production_settings_reports_no_issue():
    # DJANGO_ALLOW_ASYNC_UNSAFE: set for the browser tests in this process, never in a deployment.
    unset = {"DEBUG", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(DJANGO_SETTINGS_MODULE="dunning_project.settings.production", SECRET_KEY=secrets.token_urlsafe(50), DEBUG="false",
               ALLOWED_HOSTS="billing.example.org")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/login/", "/p/unknown-token-000000000000/"])
def test_pages_carry_a_content_security_policy_without_inline_code(client, url):
    policy = client.get(url)["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy


def test_no_template_carries_inline_script_or_style():
    """What the policy would refuse in a browser: inline <script> or <style> blocks, style= and on…= attributes."""
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for needle in ("<script>", "<style", ' style="', " onclick=", " onchange=", " onsubmit="):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle.strip()}")
    assert offenders == []
