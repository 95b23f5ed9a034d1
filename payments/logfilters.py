"""Logs never carry a payment-link token (P1, T4, issue 11): Django logs "Not Found: /p/<token>/" for an
ended or mistyped link, and the development server logs every request line."""

from __future__ import annotations

import logging
import re

_TOKEN_PATH = re.compile(r"/p/[A-Za-z0-9_-]{8,}")


class RedactPaymentTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/p/" in message:
            record.msg, record.args = _TOKEN_PATH.sub("/p/•••", message), ()
        return True
