"""Dashboard views of notifications: the undeliverable list (U1) and the replies review queue (K4). Thin: load
rows, call one service."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, TypedDict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from dunning_project.dashboard import organization_from_url, organization_index
from notifications.models import Channel, InboundReview, Message, ReviewState, State
from notifications.replies import (
    ReviewError,
    inbound_review_decide,
    inbound_review_open_count,
    inbound_reviews,
)
from notifications.resend import AS_IS_REASONS, ResendError, message_resend_checked
from notifications.selectors import undeliverable_filter, undeliverable_messages, undeliverable_reason
from practices.models import Organization, Role
from practices.phones import phone_masked
from practices.tenancy import get_scoped_or_404, scope_to_user, user_has_role

if TYPE_CHECKING:
    from dunning_project.http import HtmxHttpRequest

PAGE_SIZE = 50


class _ResendForm(TypedDict):
    mobile_number: str
    consented: bool


def mask_destination(message: Message) -> str:
    """What staff see of a destination: phone numbers show only their last 4 digits, in the shape a person
    reads them ("(•••) •••-0199", issue 12)."""
    if message.channel == Channel.PAPER:
        address = message.postal_address or {}
        return ", ".join(filter(None, [address.get("city", ""), address.get("state", "")])) or "—"
    if not message.destination:
        return "—"
    if message.channel == Channel.SMS:
        return phone_masked(message.destination)
    return message.destination


class UndeliverableRow(NamedTuple):
    """A row of the undeliverable list: the message, what staff see of its destination, and its reason in
    the words of its channel."""

    message: Message
    destination: str
    reason: str


@login_required
@require_GET
def undeliverable_list(request: HtmxHttpRequest) -> HttpResponse:
    if not user_has_role(request.user, Role.FRONT_DESK):
        raise PermissionDenied
    organizations = list(scope_to_user(Organization.objects.order_by("name"), request.user, path="self"))
    selected = next((o for o in organizations if str(o.pk) == request.GET.get("organization")), None)
    rows = undeliverable_messages(user=request.user, organization_ids=[selected.pk] if selected else None)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = [UndeliverableRow(m, mask_destination(m), undeliverable_reason(m)) for m in page]
    context = {"page": page, "shown": shown, "organizations": organizations, "selected": selected}
    template = "_undeliverable_table" if request.htmx else "undeliverable_list"
    response = render(request, f"notifications/{template}.html", context)
    # The same URL answers a page or a partial: caches (and the back button) must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def _undeliverable_or_404(request: HttpRequest, pk: int) -> Message:
    # The same rule as the list: an opted-out, carrier-filtered or ended campaign's message is not opened
    # (and so not resent) by its URL either.
    queryset = undeliverable_filter(Message.objects.all()).select_related(
        "patient__organization", "organization", "bill"
    )
    message = get_scoped_or_404(queryset, request.user, pk=pk)
    if not user_has_role(request.user, Role.FRONT_DESK, message.organization_id):
        raise Http404
    return message


def _render_detail(
    request: HttpRequest,
    message: Message,
    *,
    error: str = "",
    form: _ResendForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "message": message,
        "masked_destination": mask_destination(message),
        "reason": undeliverable_reason(message),
        "resends": list(message.resends.order_by("-id")),
        "can_resend_as_is": message.reason in AS_IS_REASONS and bool(message.destination),
        "error": error,
        "form": form or {"mobile_number": "", "consented": False},
    }
    return render(request, "notifications/undeliverable_detail.html", context, status=status)


@login_required
@require_GET
def undeliverable_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _undeliverable_or_404(request, pk))


@login_required
@require_POST
def undeliverable_resend(request: HttpRequest, pk: int) -> HttpResponse:
    message = _undeliverable_or_404(request, pk)
    quick_add = request.POST.get("action") == "quick_add"
    form = _ResendForm(
        mobile_number=request.POST.get("mobile_number", "").strip() if quick_add else "",
        consented=quick_add and request.POST.get("consented") == "on",
    )
    if quick_add and not form["mobile_number"]:
        return _render_detail(request, message, error="Enter a mobile number.", form=form, status=400)
    try:
        resend, check = message_resend_checked(
            message=message,
            user=request.user,
            mobile_number=form["mobile_number"],
            consented=form["consented"],
        )
    except ResendError as exc:
        return _render_detail(request, message, error=str(exc), form=form, status=400)
    text = f"Resent to {message.patient.full_name} ({mask_destination(resend)})."
    if resend.state == State.SCHEDULED:
        local = timezone.localtime(resend.scheduled_for, message.patient.effective_tzinfo)
        text += f" Quiet hours: it goes out at {local:%H:%M} on {local:%b %d} in the patient's time."
    if check is not None and check.notice:
        # K5: allowed without a line type; if it cannot take texts the resend comes back on this list.
        text += f" {check.notice}"
    messages.success(request, text)
    return redirect("notifications_dashboard:undeliverable")


# K4: the replies review queue. The organization is a path segment, as on the after-final worklist (T1).
REPLY_TABS = ("open", "decided")


class ReplyRow(NamedTuple):
    review: InboundReview
    number: str


def _reply_rows(reviews: Iterable[InboundReview]) -> list[ReplyRow]:
    return [ReplyRow(review, phone_masked(review.number)) for review in reviews]


@login_required
@require_GET
def replies_index(request: HttpRequest) -> HttpResponse:
    """Replies: straight to the queue of the user's organization, or a choice when there are several."""
    return organization_index(request, url_name="notifications_dashboard:replies", title="Replies to review")


@login_required
@require_GET
def replies(request: HttpRequest, org: str) -> HttpResponse:
    """K4: the open replies, newest first, each with "Opt out this number" and "Not an opt-out"; and what was
    decided (by staff, by the phrase table or by a STOP)."""
    organization, organizations = organization_from_url(request, org)
    tab = request.GET.get("tab", "open")
    if tab not in REPLY_TABS:
        tab = "open"
    page = Paginator(inbound_reviews(organization=organization, open_only=tab == "open"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "organization": organization,
        "organizations": organizations,
        "tab": tab,
        "page": page,
        "rows": _reply_rows(page.object_list),
        "open_count": page.paginator.count
        if tab == "open"
        else inbound_review_open_count(organization=organization),
    }
    return render(request, "notifications/replies.html", context)


@login_required
@require_POST
def reply_decide(request: HtmxHttpRequest, org: str, pk: int) -> HttpResponse:
    """One decision on one open reply, through ``inbound_review_decide`` (audited). htmx gets the row back,
    decided; a plain form post goes back to the queue with a message."""
    organization, _ = organization_from_url(request, org)
    review = InboundReview.objects.filter(organization=organization, pk=pk).first()
    if review is None:
        raise Http404
    decision = request.POST.get("decision", "")
    try:
        review = inbound_review_decide(review=review, decision=decision, user=request.user)
    except ReviewError as exc:
        text, level = f"Nothing changed for …{review.number[-4:]}: {exc}", messages.ERROR
    else:
        if review.state == ReviewState.OPTED_OUT:
            sent = (
                "one confirmation text is on its way" if review.confirmation else "it was already opted out"
            )
            text = f"{phone_masked(review.number)} is opted out of texts; {sent}."
        else:
            text = f"Kept: the reply from {phone_masked(review.number)} is not an opt-out."
        level = messages.SUCCESS
    if request.htmx:
        review.refresh_from_db()
        row = ReplyRow(review, phone_masked(review.number))
        context = {"organization": organization, "row": row, "notice": text, "tab": "open"}
        return render(request, "notifications/_reply_row.html", context)
    messages.add_message(request, level, text)
    return redirect("notifications_dashboard:replies", organization.slug)
