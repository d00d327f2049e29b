"""The API tokens page: a person makes, names, lists and revokes their own API tokens, each for
their personal space or one of their teams, and may give each a budget of its own, a default
webhook URL and a new signing secret; it lists the tokens' recent webhook deliveries, each
with Send again."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from jobs import selectors, webhooks
from jobs.forms import ChargePlaces, charge_places_for
from jobs.models import Budget
from jobs.security import client_ip
from jobs.services import BudgetLimitError, ChargeRefusedError, delivery_resend
from jobs.services import tokens as token_services


class TokenBudgetFields(forms.Form):
    """A token's own budget: a limit in USD per period, or empty for none."""

    limit = forms.DecimalField(
        label="Budget (USD)",
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        help_text="Optional: the most this token's videos may cost per period. Empty: no limit "
        "of its own (the budgets where it charges still apply).",
        error_messages={
            "invalid": "Enter an amount in dollars, such as 5 or 2.50, or leave it empty.",
            "min_value": "A budget cannot be negative. Leave it empty for no limit.",
            "max_digits": "Enter an amount under $100,000,000.",
            "max_decimal_places": "Enter dollars and cents, at most 2 decimal places.",
        },
    )
    period = forms.ChoiceField(
        label="Per",
        choices=Budget.Period.choices,
        initial=Budget.Period.MONTH,
        required=False,
        help_text="Calendar day, ISO week or calendar month, in UTC.",
        error_messages={"invalid_choice": "Choose a day, an ISO week or a month."},
    )

    def clean_period(self) -> str:
        return self.cleaned_data["period"] or Budget.Period.MONTH


class WebhookUrlField(forms.CharField):
    """A webhook URL, checked as the API checks one: http(s), a public address (unless
    GATEWAY_IMAGE_URLS_PRIVATE), the reason said in words."""

    def __init__(self, **kwargs):
        super().__init__(
            label="Webhook URL",
            required=False,
            max_length=webhooks.URL_MAX_LENGTH,
            help_text="Optional: where the studio POSTs each of this token's jobs when it "
            "succeeds, fails or is canceled, signed with the token's secret, unless the request "
            "names its own webhook_url. Empty: no default.",
            **kwargs,
        )

    def clean(self, value):
        value = super().clean(value).strip()
        if not value:
            return ""
        try:
            return webhooks.url_check(value)
        except webhooks.WebhookUrlError as exc:
            raise forms.ValidationError(f"The studio cannot post there: {exc}.") from None


class TokenWebhookForm(forms.Form):
    webhook_url = WebhookUrlField()


class ApiTokenForm(TokenBudgetFields):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What the token is for, so you can tell them apart: “render script on my laptop”.",
        error_messages={"required": "Give the token a name, so you can tell it apart later."},
    )
    webhook_url = WebhookUrlField()
    field_order = ["name", "charge_to", "limit", "period", "webhook_url"]

    def __init__(self, *args, places: ChargePlaces, **kwargs):
        super().__init__(*args, **kwargs)
        self.places = places
        if places.offered:
            self.fields["charge_to"] = forms.ChoiceField(
                label="Charge to",
                choices=places.choices(),
                initial=places.initial,
                help_text="Where the token's videos are charged and shared. A token for a team "
                "stops working if you leave the team.",
                error_messages={
                    "required": "Choose where this token's videos are charged.",
                    "invalid_choice": "You cannot charge videos there: you are not a member of "
                    "that team. Choose one of the places listed.",
                },
            )
            self.order_fields(self.field_order)

    def clean_charge_to(self):
        return self.places.team_for(self.cleaned_data["charge_to"])


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    """The list, and the form that makes a token. A new key is shown once, in the answer to the
    POST that made it, and stored nowhere (not in the session, nor in a message cookie), so a
    reload or the Back button cannot show it again."""
    places = charge_places_for(request.user)
    form = ApiTokenForm(request.POST or None, places=places)
    new_key = new_token = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            new_token, new_key = token_services.token_create(
                user=request.user,
                name=data["name"],
                team=data.get("charge_to"),
                limit=data["limit"],
                period=data["period"],
                address=client_ip(request),
                webhook_url=data["webhook_url"],
            )
        except (ChargeRefusedError, BudgetLimitError) as exc:
            form.add_error(None, str(exc))
        else:
            form = ApiTokenForm(places=places)
    return _page(request, form, new_key=new_key, new_token=new_token)


def _page(request, form=None, *, new_key=None, new_token=None, secret_token=None):
    """The page; a key or signing secret just made is in this answer only, never cached."""
    form = form or ApiTokenForm(places=charge_places_for(request.user))
    context = _context(request, form, new_key, new_token)
    context["secret_token"] = secret_token or (new_token if new_key else None)
    response = render(request, "jobs/api_tokens.html", context)
    if context["secret_token"]:
        response["Cache-Control"] = "no-store"
    return response


def _context(request, form, new_key=None, new_token=None) -> dict:
    tokens = list(selectors.api_tokens_for_user(user=request.user))
    budgets = selectors.token_budget_statuses(user=request.user)
    for token in tokens:
        token.budget_status = budgets.get(token.pk)
    return {
        "form": form,
        "places": form.places,
        "tokens": tokens,
        "periods": Budget.Period.choices,
        "new_key": new_key,
        "new_token": new_token,
        "api_base": request.build_absolute_uri("/v1").rstrip("/"),
        "deliveries": selectors.deliveries_for_user(user=request.user),
    }


@login_required
@require_POST
def api_token_budget(request, token_id):
    """Set or clear the budget of one of the person's own live tokens; anyone else's is 404."""
    token = selectors.api_tokens_for_user(user=request.user).filter(pk=token_id).first()
    if token is None or token.revoked_at is not None:
        raise Http404("No such token.")
    form = TokenBudgetFields(request.POST)
    if not form.is_valid():
        errors = "; ".join(error for field in form.errors.values() for error in field)
        messages.error(request, f"The budget of “{token.name}” was not changed: {errors}")
        return redirect("api_tokens")
    limit, period = form.cleaned_data["limit"], form.cleaned_data["period"]
    try:
        token_services.token_budget_set(
            user=request.user,
            token_id=token.pk,
            limit=limit,
            period=period,
            address=client_ip(request),
        )
    except BudgetLimitError as exc:
        messages.error(request, str(exc))
        return redirect("api_tokens")
    if limit is None:
        messages.success(request, f"“{token.name}” has no budget of its own now.")
    else:
        messages.success(request, f"“{token.name}” may now spend ${limit:.2f} a {period}.")
    return redirect("api_tokens")


@login_required
@require_POST
def api_token_revoke(request, token_id):
    """Revoke one of the person's own tokens; anyone else's is 404, as if it did not exist."""
    token = selectors.api_tokens_for_user(user=request.user).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    if token_services.token_revoke(
        user=request.user, token_id=token.pk, address=client_ip(request)
    ):
        messages.success(request, f"Revoked “{token.name}”. Requests with it now get 401.")
    else:
        messages.info(request, f"“{token.name}” was already revoked.")
    return redirect("api_tokens")


@login_required
@require_POST
def api_token_webhook(request, token_id):
    """Set or clear the default webhook URL of one of the person's own live tokens; anyone
    else's is 404. A token made before webhooks gets its signing secret now, shown once."""
    token = _own_live_token(request, token_id)
    form = TokenWebhookForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(error for field in form.errors.values() for error in field)
        messages.error(request, f"The webhook of “{token.name}” was not changed: {errors}")
        return redirect("api_tokens")
    had_secret = bool(token.webhook_secret)
    url = form.cleaned_data["webhook_url"]
    token = token_services.token_webhook_set(user=request.user, token_id=token.pk, url=url)
    if token is None:  # revoked a moment ago
        raise Http404("No such token.")
    if url:
        messages.success(request, f"“{token.name}” now posts its jobs' webhooks to the new URL.")
    else:
        messages.success(request, f"“{token.name}” has no default webhook now.")
    if not had_secret:
        return _page(request, secret_token=token)
    return redirect("api_tokens")


@login_required
@require_POST
def api_token_secret_rotate(request, token_id):
    """A new signing secret for one of the person's own live tokens, shown once in this answer.
    The old one stops at once: deliveries from now on, retries included, use the new one."""
    token = _own_live_token(request, token_id)
    token = token_services.token_secret_rotate(user=request.user, token_id=token.pk)
    if token is None:  # revoked a moment ago
        raise Http404("No such token.")
    messages.success(request, f"“{token.name}” has a new signing secret: update your receiver.")
    return _page(request, secret_token=token)


@login_required
@require_POST
def api_delivery_resend(request, delivery_id):
    """Send one of the person's own webhook deliveries again; anyone else's is 404."""
    delivery = selectors.delivery_get_for_user(user=request.user, delivery_id=delivery_id)
    if delivery_resend(delivery=delivery):
        messages.success(request, f"Sending the {delivery.event} webhook again.")
    else:
        messages.info(request, "That webhook is still being sent; it was not queued twice.")
    return redirect("api_tokens")


def _own_live_token(request, token_id):
    token = selectors.api_tokens_for_user(user=request.user).filter(pk=token_id).first()
    if token is None or token.revoked_at is not None:
        raise Http404("No such token.")
    return token
