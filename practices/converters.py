"""A URL path converter for PMS ids (issue 11): a practice-management system may put anything in an id
(``/``, ``%``, spaces, accents, ``=``), and a page must still link to it and find it again.

Percent-encoding alone does not survive: the server decodes ``%2F`` back to ``/`` before Django matches
the path. So the id is percent-encoded and every ``%`` (and ``~``) then written as ``~``: ``A/1`` becomes
``A~2F1``, which no server or proxy rewrites, and ``to_python`` turns it back."""

from __future__ import annotations

from urllib.parse import quote, unquote


class PmsIdConverter:
    regex = r"[A-Za-z0-9_.\-~]+"

    def to_python(self, value: str) -> str:
        return unquote(value.replace("~", "%"), errors="strict")

    def to_url(self, value: str) -> str:
        return quote(str(value), safe="").replace("~", "%7E").replace("%", "~")
