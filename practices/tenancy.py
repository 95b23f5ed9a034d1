"""One mechanism that limits what a user sees to their organizations (T1) and what they may do (T2).

Admin classes use ``OrganizationScopedAdmin``; dashboard views call ``scope_to_user`` on their querysets.
Superusers are ops and see every organization.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib import admin
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from practices.models import AuditEvent, Membership, Organization, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import User

_ModelT = TypeVar("_ModelT", bound=Model)

# T2: each role includes the rights of the roles before it.
ROLE_RANK = {Role.FRONT_DESK: 1, Role.BILLING_MANAGER: 2, Role.ORG_ADMIN: 3}


def organization_ids_for(user: Any, *, min_role: str = Role.FRONT_DESK) -> list[int] | None:
    """The ids of the organizations where ``user`` holds at least ``min_role``; None means all (ops)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    if user.is_superuser:
        return None
    cache = getattr(user, "_organization_roles", None)
    if cache is None:
        cache = dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))
        user._organization_roles = cache
    needed = ROLE_RANK[Role(min_role)]
    return [org_id for org_id, role in cache.items() if ROLE_RANK[Role(role)] >= needed]


def user_has_role(user: Any, min_role: str, organization: Organization | int | None = None) -> bool:
    ids = organization_ids_for(user, min_role=min_role)
    if ids is None:
        return True
    if organization is None:
        return bool(ids)
    org_id = organization if isinstance(organization, int) else organization.pk
    return org_id in ids


def scope_to_user(
    queryset: QuerySet[_ModelT], user: Any, *, path: str = "organization", min_role: str = Role.FRONT_DESK
) -> QuerySet[_ModelT]:
    """Limit ``queryset`` to rows whose ``path`` organization the user belongs to."""
    ids = organization_ids_for(user, min_role=min_role)
    if ids is None:
        return queryset
    lookup = "pk__in" if path in ("", "self") else f"{path}__in"
    return queryset.filter(**{lookup: ids})


def get_scoped_or_404(
    queryset: QuerySet[_ModelT], user: Any, *, path: str = "organization", **lookup: Any
) -> _ModelT:
    try:
        return scope_to_user(queryset, user, path=path).get(**lookup)
    except ObjectDoesNotExist as exc:
        raise Http404 from exc


def staff_user(request: HttpRequest) -> User:
    """The logged-in user of an admin or dashboard request (both let no anonymous user in)."""
    user = request.user
    assert user.is_authenticated
    return user


class OrganizationScopedAdmin(admin.ModelAdmin[_ModelT]):
    """Admin limited to the user's organizations, with rights by role.

    ``organization_path`` is the lookup from the model to its Organization. ``view_role`` etc. name the least
    role needed; None means ops (superusers) only.
    """

    organization_path = "organization"
    view_role: str | None = Role.FRONT_DESK
    add_role: str | None = None
    change_role: str | None = None
    delete_role: str | None = None
    audited = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[_ModelT]:
        queryset = super().get_queryset(request)
        if self.view_role is None and not request.user.is_superuser:
            return queryset.none()
        # Scoped by this admin's own role: a billing manager of A who is front desk at B sees only A's rows here.
        return scope_to_user(
            queryset, request.user, path=self.organization_path, min_role=self.view_role or Role.FRONT_DESK
        )

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> _ModelT:
        # Django redirects to the index for a missing object; another organization's id must be a 404 (T1).
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj

    def _allowed(self, request: HttpRequest, role: str | None, obj: _ModelT | None = None) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        if role is None:
            return False
        return user_has_role(user, role, self._organization_of(obj) if obj is not None else None)

    def _organization_of(self, obj: _ModelT) -> int | None:
        if isinstance(obj, Organization):
            return obj.pk
        target: Any = obj
        for part in self.organization_path.split("__"):
            target = getattr(target, part, None)
            if target is None:
                return None
        return target.pk

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.view_role)

    def has_view_permission(self, request: HttpRequest, obj: _ModelT | None = None) -> bool:
        return self._allowed(request, self.view_role, obj) or self.has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, self.add_role)

    def has_change_permission(self, request: HttpRequest, obj: _ModelT | None = None) -> bool:
        return self._allowed(request, self.change_role, obj)

    def has_delete_permission(self, request: HttpRequest, obj: _ModelT | None = None) -> bool:
        return self._allowed(request, self.delete_role, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model is Organization:
            # Only the organizations where the user may create or change these objects.
            role = self.add_role or self.change_role or self.view_role or Role.ORG_ADMIN
            kwargs["queryset"] = scope_to_user(
                Organization.objects.all(), request.user, path="self", min_role=role
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: _ModelT, form: Any, change: bool) -> None:
        changes = _form_changes(form, obj) if change else {}
        super().save_model(request, obj, form, change)
        if self.audited:
            organization_id = self._organization_of(obj)
            event = AuditEvent.objects.create(
                organization_id=organization_id,
                actor=staff_user(request),
                actor_label=request.user.get_username(),
                action=f"admin.{'change' if change else 'add'}",
                object_type=obj._meta.label,
                object_id=str(obj.pk),
                changes=changes,
            )
            self.audit_written(request, obj, form, event)

    def audit_written(self, request: HttpRequest, obj: _ModelT, form: Any, event: AuditEvent) -> None:
        """Called in the save's transaction with its audit event, for what belongs with it (e.g. the
        settings impact preview the change was saved with, W1)."""

    def delete_model(self, request: HttpRequest, obj: _ModelT) -> None:
        self._audit_delete(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[_ModelT]) -> None:
        self._audit_delete(request, list(queryset))
        super().delete_queryset(request, queryset)

    def _audit_delete(self, request: HttpRequest, objs: list[_ModelT]) -> None:
        if not self.audited:
            return
        actor = staff_user(request)
        AuditEvent.objects.bulk_create(
            AuditEvent(
                organization_id=self._organization_of(obj),
                actor=actor,
                actor_label=request.user.get_username(),
                action="admin.delete",
                object_type=obj._meta.label,
                object_id=str(obj.pk),
                changes={"deleted": str(obj)},
            )
            for obj in objs
        )


class SystemWrittenAdmin(OrganizationScopedAdmin[_ModelT]):
    """Rows only the product writes (runs, the decision trail, letter batches): nobody, ops included, adds,
    changes or deletes them here. Actions with permissions of their own still run."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _ModelT | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _ModelT | None = None) -> bool:
        return False


def _form_changes(form: Any, obj: Model) -> dict[str, list[str]]:
    changes: dict[str, list[str]] = {}
    for name in form.changed_data:
        old = form.initial.get(name)
        new = form.cleaned_data.get(name)
        changes[name] = [_show(old), _show(new)]
    return changes


def _show(value: Any) -> str:
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)
