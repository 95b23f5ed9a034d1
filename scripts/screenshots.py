#!/usr/bin/env python3
"""Take the README's "Morning workflow" screenshots into docs/screenshots/ (1280x800 PNGs).

Needs Debian's Chromium (/usr/bin/chromium) and the dev requirements; runs the skipped-by-default browser test
tests/browser/test_screenshots.py against pytest-django's live server on a throwaway test database.

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = {**os.environ, "SCREENSHOTS_DIR": str(ROOT / "docs" / "screenshots")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/browser/test_screenshots.py",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    return subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603


if __name__ == "__main__":
    raise SystemExit(main())
