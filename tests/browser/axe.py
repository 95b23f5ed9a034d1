"""axe-core in the browser tests (issue 12): the page's serious and critical accessibility violations.

axe-core comes from npm (package.json, pinned; ``make test`` runs ``npm ci``) and is evaluated in the page
through Playwright, which the site's Content-Security-Policy does not apply to (DevTools evaluation is not a
page script), so the CSP under test stays the production one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def axe_source() -> str:
    if not AXE.exists():
        reason = f"axe-core is not installed at {AXE} (npm ci, which make test runs when npm is there)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return AXE.read_text()


def violations(page: Any, *, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now (WCAG 2.1 A and AA rules and axe's best practices), of
    the given impacts."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result: dict[str, Any] = page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v["impact"] in impacts]


def describe(found: list[dict[str, Any]]) -> str:
    """One line per violation and node, for an assertion message a person can act on."""
    lines = []
    for violation in found:
        for node in violation["nodes"][:5]:
            lines.append(
                f"{violation['impact']} {violation['id']}: {node['target']} — {node['failureSummary']}"
            )
    return "\n".join(lines)
