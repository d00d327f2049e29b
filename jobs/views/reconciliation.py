"""Reconciliation: the studio's totals beside the provider's usage (the account's and each
provider key's), and the unknown outcomes an admin checks and marks charged or not charged.
Staff only; the period form and paging are the cost review's (views/review.py)."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from jobs import imagerouter, selectors, services
from jobs.models import CostEntry
from jobs.security import client_ip
from jobs.templatetags.studio import usd
from jobs.views.review import paged, period_form, review_context


@staff_member_required
@require_GET
def cost_reconciliation(request):
    """The studio's totals beside the provider's usage, and the unknown outcomes to check."""
    form = period_form(request)
    period = form.period
    totals = selectors.reconciliation_totals(first_day=period.first_day, last_day=period.last_day)
    in_period, all_time = totals["period"], totals["all_time"]
    in_flight = selectors.live_holds_total()

    provider, provider_error = None, None
    try:
        provider = imagerouter.get_client().credits(by_api_key=True)
    except imagerouter.ImageRouterError as exc:
        provider_error = str(exc) or type(exc).__name__
    usage = provider.get("credit_usage") if provider else None
    key_rows = _provider_key_rows(provider) if provider else []

    comparison = None
    if usage is not None:
        difference = usage - all_time["total"]
        explainable = all_time["pending"] + in_flight
        comparison = {
            "period_difference": _signed_usd(usage - in_period["total"]),
            "difference": difference,
            "difference_text": _signed_usd(difference),
            "explainable": explainable,
            "unexplained": difference - explainable if difference > explainable else Decimal(0),
        }
    show_all = request.GET.get("show") == "all"
    page = paged(
        selectors.unknown_outcomes(period.entries(), pending_only=not show_all),
        count=in_period["unknown"] if show_all else in_period["to_check"],
        number=request.GET.get("page"),
    )
    return render(
        request,
        "review/reconciliation.html",
        review_context(
            request,
            title="Reconciliation",
            form=form,
            period=period,
            in_period=in_period,
            all_time=all_time,
            in_flight=in_flight,
            provider=provider,
            provider_error=provider_error,
            key_rows=key_rows,
            account_key=selectors.ledger_on_account_key() if key_rows else None,
            usage=usage,
            comparison=comparison,
            show_all=show_all,
            page=page,
        ),
    )


@dataclass
class KeyRow:
    """One provider key in reconciliation: the provider's figures for it and, for a key the
    studio minted, its ledger for the jobs that called with it, with the differences."""

    name: str
    provider: dict
    key: object = None  # the studio's ProviderKey, None for a key it did not mint
    studio: dict | None = None

    @property
    def difference(self) -> Decimal | None:
        if self.studio is None or self.provider.get("credit_usage") is None:
            return None
        return self.provider["credit_usage"] - self.studio["total"]

    @property
    def window_difference(self) -> Decimal | None:
        if self.studio is None or self.provider.get("period_spend") is None:
            return None
        return self.provider["period_spend"] - self.studio["window_total"]

    @property
    def difference_text(self) -> str:
        return "—" if self.difference is None else _signed_usd(self.difference)

    @property
    def window_difference_text(self) -> str:
        return "—" if self.window_difference is None else _signed_usd(self.window_difference)


def _provider_key_rows(provider: dict) -> list[KeyRow]:
    """The provider's usage per key, the keys the studio minted first (newest first), each
    beside the studio's ledger for the jobs that used it: all time against `credit_usage`, and
    from the provider's `period_start` against `period_spend`."""
    reported = [row for row in provider.get("usage_by_api_key") or [] if isinstance(row, dict)]
    minted = selectors.provider_keys_by_provider_id([row.get("api_key_id") for row in reported])
    windows = {
        minted[row["api_key_id"]].pk: row.get("period_start")
        for row in reported
        if row.get("api_key_id") in minted
    }
    ledger = selectors.ledger_by_provider_key(windows)
    rows = []
    for row in reported:
        key = minted.get(row.get("api_key_id"))
        name = str(row.get("api_key_name") or row.get("api_key_id") or "—")
        rows.append(
            KeyRow(name=name, provider=row, key=key, studio=ledger[key.pk] if key else None)
        )
    rows.sort(key=lambda r: (r.key is None, -(r.key.created_at.timestamp() if r.key else 0)))
    return rows


def _signed_usd(amount: Decimal) -> str:
    """A negative amount with a minus sign before the dollar sign, as people write it."""
    return f"−{usd(-amount)}" if amount < 0 else usd(amount)


@staff_member_required
@require_POST
def cost_reconcile(request, job_id):
    """An admin's verdict on one unknown outcome: charged or not charged."""
    entry = get_object_or_404(CostEntry, job_id=job_id, outcome=CostEntry.Outcome.UNKNOWN)
    verdict = request.POST.get("verdict")
    amount, amount_error = _charged_amount(request.POST.get("amount", ""), entry)
    if verdict not in ("charged", "not_charged"):
        messages.error(request, "Choose charged or not charged.")
    elif verdict == "charged" and amount_error:
        messages.error(request, amount_error)
    elif services.ledger_reconcile(
        entry=entry,
        charged=verdict == "charged",
        by=request.user,
        amount=amount,
        address=client_ip(request),
    ):
        entry.refresh_from_db()
        messages.success(
            request,
            f"Marked job {entry.job_id} {entry.get_reconciliation_display().removeprefix('checked: ')}"
            f"; it now counts {usd(entry.cost)}.",
        )
    else:
        messages.info(request, f"Job {entry.job_id} was already checked; nothing changed.")
    next_url = request.POST.get("next", "")
    back = reverse("costs:reconciliation")
    # Back to the reconciliation page it came from: a path on this site under it, never a view
    # name (redirect() would look one up, and an unknown name is a NoReverseMatch, a 500).
    if not (
        url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        and next_url.startswith(back)
    ):
        next_url = back
    return redirect(next_url)


def _charged_amount(raw: str, entry: CostEntry) -> tuple[Decimal | None, str]:
    """The amount the provider's logs show, if the admin typed one: at most the possible cost."""
    raw = raw.strip().lstrip("$")
    if not raw:
        return None, ""
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return None, f"{raw!r} is not an amount in dollars, such as 0.34."
    if not amount.is_finite():  # NaN cannot be compared, Infinity is no amount
        return None, f"{raw!r} is not an amount in dollars, such as 0.34."
    top = entry.possible_cost or Decimal(0)
    if not Decimal(0) <= amount <= top:
        return None, f"The amount must be between $0 and the possible cost, {usd(top)}."
    return amount.quantize(Decimal("0.000001")), ""
