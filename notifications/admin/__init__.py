"""The notifications admin, one module per area so that each stays small."""

from __future__ import annotations

from notifications.admin import batches, consent, messages, sending, templates, translations  # noqa: F401
