"""Write services of the practices app: organizations, API tokens, audit."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from practices.models import ApiToken, AuditEvent, Organization, validate_timezone


class OrganizationExists(Exception):
    pass


def audit_record(
    *,
    organization: Organization | None,
    actor: Any = None,
    actor_label: str = "",
    action: str,
    obj: Any = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=actor_label or (actor.get_username() if getattr(actor, "pk", None) else "system"),
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        changes=changes or {},
    )


# The apps that keep one settings row per organization (dunning, payments) register the service that creates
# it with its defaults, called as create(organization=…); practices imports nothing from them.
_settings_creators: list[Callable[..., object]] = []


def register_organization_settings(create: Callable[..., object]) -> None:
    if create not in _settings_creators:
        _settings_creators.append(create)


def organization_settings_create(*, organization: Organization) -> None:
    """Create the organization's settings rows that do not exist yet, with their defaults, so that a billing
    manager finds them in the admin (nobody adds them). Idempotent."""
    for create in _settings_creators:
        create(organization=organization)


@transaction.atomic
def organization_create(*, slug: str, name: str, timezone_name: str, actor_label: str = "") -> Organization:
    """Onboard an organization with default settings; raises OrganizationExists or ValidationError."""
    validate_timezone(timezone_name)
    if Organization.objects.filter(slug=slug).exists():
        raise OrganizationExists(slug)
    organization = Organization(slug=slug, name=name, timezone=timezone_name)
    organization.full_clean()
    organization.save()
    organization_settings_create(organization=organization)
    audit_record(
        organization=organization,
        actor_label=actor_label or "system",
        action="organization.create",
        obj=organization,
        changes={"slug": ["", slug], "name": ["", name], "timezone": ["", timezone_name]},
    )
    return organization


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_issue(*, organization: Organization, name: str, created_by: Any = None) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which is shown once and never stored."""
    plaintext = f"dun_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        organization=organization,
        name=name,
        prefix=plaintext[:12],
        token_hash=_hash_token(plaintext),
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    audit_record(organization=organization, actor=created_by, action="api_token.issue", obj=token)
    return token, plaintext


def api_token_authenticate(*, plaintext: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("organization")
        .filter(token_hash=_hash_token(plaintext), revoked_at__isnull=True)
        .first()
    )
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def api_token_revoke(*, token: ApiToken, actor: Any = None) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(organization=token.organization, actor=actor, action="api_token.revoke", obj=token)
