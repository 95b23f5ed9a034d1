"""The scratch database: created on the server that ``DATABASE_URL`` names, dropped afterwards, so a run never
touches the developer's own data."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "postgis")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class NotPostgres(Exception):
    pass


def check_url(url: str | None) -> str:
    """``url`` when it names a PostgreSQL server, else NotPostgres with the reason."""
    if not url:
        raise NotPostgres("DATABASE_URL is not set")
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme not in POSTGRES_SCHEMES:
        raise NotPostgres(f"DATABASE_URL is {scheme}://…, not PostgreSQL")
    return url


def with_database(url: str, name: str) -> str:
    """``url`` on the same server (user, host, port, options) with database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _libpq(url: str) -> str:
    parts = urlsplit(url)
    scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def create(url: str, name: str) -> str:
    """(Re)create database ``name`` next to ``url``'s and return its URL. A leftover from a crashed run is
    dropped first: the name is the harness's own."""
    if not _NAME.match(name):
        raise ValueError(f"bad scratch database name {name!r}")
    with psycopg.connect(_libpq(with_database(url, "postgres")), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(url, name)


def drop(url: str, name: str) -> None:
    with psycopg.connect(_libpq(with_database(url, "postgres")), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def server_version(url: str) -> str:
    with psycopg.connect(_libpq(url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None  # SHOW always answers one row
        return str(version[0])
