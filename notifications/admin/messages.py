"""Admin: messages."""

from __future__ import annotations
