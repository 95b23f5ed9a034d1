"""The PMS feed importer (SPEC §3, I0-I6): one service behind `import_feed` and `POST /api/v1/feeds`."""

from __future__ import annotations

from practices.importer.service import ImportSummary, feed_import

__all__ = ["ImportSummary", "feed_import"]
