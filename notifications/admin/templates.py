"""Admin: templates."""

from __future__ import annotations
