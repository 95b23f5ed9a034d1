"""The Results page (SPEC §16 V1) and its CSV exports: any member of the practice reads it (the front desk
too, read-only: nothing here changes anything), through the dashboard's organization resolution (T1: another
practice's slug answers 404). Thin: validate the range, ask ``results_report``, lay out charts and tables."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from dunning_project.dashboard import organization_from_url, organization_index
from payments.results import charts
from payments.results.forms import RangeForm
from payments.results.selectors import PRESETS, Report, default_range, results_report
from payments.results.tables import STAGE_NAMES, report_tables
from practices.csv_export import csv_text
from practices.models import Organization
from practices.timezones import organization_today


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return organization_index(request, url_name="results_dashboard:results", title="Results")


def _range(request: HttpRequest, organization: Organization) -> tuple[RangeForm, date | None, date | None]:
    today = organization_today(organization)
    if not request.GET:
        since, until = default_range(organization)
        form = RangeForm(initial={"since": since, "until": until, "preset": "90"}, today=today)
        return form, since, until
    form = RangeForm(request.GET, today=today)
    if not form.is_valid():
        return form, None, None
    return form, form.cleaned_data["since"], form.cleaned_data["until"]


@login_required
@require_GET
def results(request: HttpRequest, org: str) -> HttpResponse:
    organization, organizations = organization_from_url(request, org)
    form, since, until = _range(request, organization)
    context: dict[str, Any] = {
        "organization": organization,
        "organizations": organizations,
        "form": form,
        "presets": [(key, label, _url(organization, preset=key)) for key, label in PRESETS],
        "active_preset": request.GET.get("preset", "" if request.GET else "90"),
    }
    if since is None or until is None:
        return render(request, "results/results.html", context, status=400)
    report = results_report(organization=organization, since=since, until=until)
    tables = report_tables(report)
    query = {"since": since.isoformat(), "until": until.isoformat()}
    context.update(
        report=report,
        sections=_sections(report, tables, organization, query),
        since=since,
        until=until,
    )
    if form.is_bound and form.cleaned_data.get("preset"):
        context["form"] = RangeForm(initial={"since": since, "until": until}, today=form.today)
    return render(request, "results/results.html", context)


def _url(organization: Organization, name: str = "results", **query: str) -> str:
    url = reverse(f"results_dashboard:{name}", args=[organization.slug])
    return f"{url}?{urlencode(query)}" if query else url


def _csv_url(organization: Organization, slug: str, query: dict[str, str]) -> str:
    url = reverse("results_dashboard:csv", args=[organization.slug, slug])
    return f"{url}?{urlencode(query)}"


def _sections(
    report: Report, tables: dict[str, Any], organization: Organization, query: dict[str, str]
) -> list[dict[str, Any]]:
    """Each section of the page: a chart (SVG) with its table beside it and the table's CSV link."""
    period = f"{report.since:%b} {report.since.day}, {report.since:%Y} to {report.until:%b} {report.until.day}, {report.until:%Y}"
    funnel_items = [(STAGE_NAMES[m], s.count) for m, s in report.total.stages.items()]
    weeks = [(f"{w.start:%b} {w.start.day}", w.amount) for w in report.weeks]
    ar = [(f"{p.day:%b} {p.day.day}", [p.bucket_0_30, p.bucket_31_60, p.bucket_61_90, p.bucket_over_90])
          for p in report.ar]  # fmt: skip
    sections = [
        ("funnel", "Funnel", charts.horizontal_bars(
            slug="funnel", title="Messages at each stage of the funnel",
            description=f"{period}: " + "; ".join(f"{name} {count:,}" for name, count in funnel_items) + ".",
            items=funnel_items), ["by-channel", "by-kind", "by-step"]),
        ("recovered", "Dollars recovered", charts.column_bars(
            slug="recovered", title="Dollars recovered per week",
            description=f"{period}: {charts.dollars(report.recovered)} in all, net of refunds, over {len(weeks)} weeks.",
            items=weeks, every=charts.label_every(len(weeks))), ["recovered-by-week"]),
        ("undeliverable", "Undeliverable", charts.horizontal_bars(
            slug="undeliverable", title="Undeliverable messages by reason",
            description=f"{period}: " + ("; ".join(f"{r.label} {r.count:,}" for r in report.undeliverable)
                                         or "no undeliverable message") + f", of {report.attempted:,} attempted.",
            items=[(r.label, r.count) for r in report.undeliverable], css="bar warn"), ["undeliverable"]),
        ("paper", "Paper", charts.horizontal_bars(
            slug="paper", title="Paper cost against what paper-reached campaigns paid",
            description=f"{period}: {report.paper.letters:,} letters cost {charts.dollars(report.paper.cost)}; "
            f"campaigns reached by paper paid {charts.dollars(report.paper.paid)}.",
            items=[("Paper cost", report.paper.cost), ("Paid after a letter", report.paper.paid)],
            fmt=charts.dollars), ["paper"]),
        ("ar", "Accounts receivable", charts.stacked_columns(
            slug="ar", title="Accounts receivable by aging bucket over time",
            description=f"{period}: {len(ar)} snapshots taken at the imports"
            + (f"; the last, {charts.dollars(report.ar[-1].total)} owed by {report.ar[-1].guarantors:,} guarantors."
               if report.ar else "."),
            series=["0–30 days", "31–60 days", "61–90 days", "Over 90 days"], points=ar,
            every=charts.label_every(len(ar))), ["ar"]),
    ]  # fmt: skip
    return [
        {"slug": slug, "heading": heading, "chart": chart, "wide": slug == "funnel",
         "tables": [(tables[t], _csv_url(organization, t, query)) for t in table_slugs]}
        for slug, heading, chart, table_slugs in sections
    ]  # fmt: skip


@login_required
@require_GET
def results_csv(request: HttpRequest, org: str, table: str) -> HttpResponse:
    """One table of the page as CSV (the one CSV writer, ``practices.csv_export``)."""
    organization, _ = organization_from_url(request, org)
    form, since, until = _range(request, organization)
    if since is None or until is None:
        errors = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    tables = report_tables(results_report(organization=organization, since=since, until=until))
    if table not in tables:
        raise Http404
    chosen = tables[table]
    response = HttpResponse(
        csv_text(chosen.header, chosen.csv_rows()), content_type="text/csv; charset=utf-8"
    )
    name = f"results-{organization.slug}-{table}-{since.isoformat()}-{until.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
