"""Admin: batches."""

from __future__ import annotations
