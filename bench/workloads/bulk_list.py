"""The bulk payment request list (SPEC §11, R1-R11, R9): ``eligible_guarantors`` for one organization.

The organization has 50 000 eligible guarantors and 5 000 more that each fail one rule (``list_data``).
The figure is the list's query evaluated to the end (every row fetched as the ``bulk_list`` columns), median
of 15 after 2 warm-up runs. The baseline is a hand-written SQL query of the same rules for the same
settings (the defaults: no minimum, every aging category, no claims limit) fetching the same columns,
with every subquery naming the organization as the ORM's do (otherwise it reads every tenant's bills).
"""

from __future__ import annotations

from django.db import connection

from bench.harness import Row, median, repeat, row, say
from bench.workloads import Context
from bench.workloads.list_data import list_organization
from payments.eligibility import eligible_guarantors

COLUMNS = ("external_id", "first_name", "last_name", "account__patient_portion", "account__aging_category",
           "last_visit_date")  # fmt: skip

BASELINE = """
SELECT p.external_id, p.first_name, p.last_name, a.patient_portion, a.aging_category, p.last_visit_date
FROM practices_patient p JOIN practices_account a ON a.guarantor_id = p.id
WHERE p.organization_id = %(org)s AND p.is_guarantor AND NOT p.on_payment_plan AND NOT p.do_not_contact
  AND a.organization_id = %(org)s AND a.patient_portion > 0
  AND a.aging_category IN ('0_30', '31_60', '61_90', 'over_90')
  AND NOT EXISTS (SELECT 1 FROM payments_snooze s WHERE s.organization_id = %(org)s AND s.guarantor_id = p.id
                  AND s.lifted_at IS NULL AND s.until > %(on)s)
  AND NOT EXISTS (SELECT 1 FROM practices_bill b WHERE b.organization_id = %(org)s AND b.guarantor_id = p.id
                  AND b.state = 'active')
  AND NOT EXISTS (SELECT 1 FROM practices_bill b WHERE b.organization_id = %(org)s AND b.guarantor_id = p.id
                  AND b.effective_created_date >= coalesce(p.last_visit_date, '0001-01-01'))
  AND NOT EXISTS (SELECT 1 FROM payments_paymentrequest r WHERE r.organization_id = %(org)s
                  AND r.guarantor_id = p.id AND r.mode = 'single'
                  AND r.request_date >= coalesce(p.last_visit_date, '0001-01-01'))
ORDER BY p.external_id
"""


def run(ctx: Context) -> list[Row]:
    eligible = ctx.n(50_000, minimum=100)
    org = list_organization(eligible)
    got: list = []
    expected: list = []

    def orm() -> None:
        got[:] = list(eligible_guarantors(organization=org, on=ctx.today).values_list(*COLUMNS))

    def sql() -> None:
        with connection.cursor() as cursor:
            cursor.execute(BASELINE, {"org": org.pk, "on": ctx.today})
            expected[:] = cursor.fetchall()

    reps = 15
    times = repeat(orm, reps=reps, warmup=2)
    base = repeat(sql, reps=reps, warmup=2)
    mismatch = "" if [r[0] for r in got] == [r[0] for r in expected] else "THE LISTS DIFFER. "
    if len(got) != eligible:
        mismatch += f"expected {eligible:,} eligible, got {len(got):,}. "
    value, baseline = median(times) * 1000, median(base) * 1000
    say(f"bulk list: {value:.0f} ms, SQL {baseline:.0f} ms, {len(got):,} rows")
    return [
        row("bulk_list", value=value, unit="ms", baseline=baseline, budget="≤ 100 ms, ratio ≤ 2",
            ok=value <= 100 and value / baseline <= 2 and not mismatch, reps=[t * 1000 for t in times],
            notes=f"{mismatch}{len(got):,} eligible of {eligible + max(8, eligible // 10):,} guarantors; "
            f"median of {reps} after 2 warm-up runs"),
    ]  # fmt: skip
