"""A person's Spending page: this month against the budget, earlier months, and only their own."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from jobs import selectors
from jobs.models import Job
from tests.factories import KLING, SORA, VEO, make_entry, set_budget

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def this_month():
    """A moment early in this month (UTC), so entries made at it are never in the future."""
    return selectors.month_start() + timedelta(seconds=30)


@pytest.fixture
def spending(alice, bob, this_month):
    """Alice this month: $1.35 on 3 jobs, a refused one at $0 and an unknown outcome that may
    have cost $0.50. Last month $0.30, eleven months ago $0.20, twelve months ago $7 (too old
    for the page). Bob spent $9.99 this month on a model alice never used."""
    make_entry(alice, KLING, "0.50", this_month)
    make_entry(alice, KLING, "0.25", this_month)
    make_entry(alice, VEO, "0.60", this_month + timedelta(seconds=1))
    make_entry(alice, VEO, "0", this_month, outcome="refunded")
    make_entry(alice, KLING, "0", this_month, outcome="unknown", possible=Decimal("0.50"))
    make_entry(alice, KLING, "0.30", selectors.months_back(this_month, 1) + timedelta(days=3))
    make_entry(alice, VEO, "0.20", selectors.months_back(this_month, 11))
    make_entry(alice, KLING, "7.00", selectors.months_back(this_month, 12))
    make_entry(bob, SORA, "9.99", this_month)


def get_spending(client):
    response = client.get(reverse("spending"))
    assert response.status_code == 200
    return response


def test_this_month_shows_total_count_models_and_what_may_have_been_charged(alice_client, spending):
    response = get_spending(alice_client)

    month = response.context["this_month"]
    assert (month["total"], month["count"], month["pending"]) == (
        Decimal("1.35"),
        5,
        Decimal("0.50"),
    )
    models = {row["model"]: (row["total"], row["count"]) for row in month["models"]}
    assert models == {KLING: (Decimal("0.75"), 3), VEO: (Decimal("0.60"), 2)}
    html = response.content.decode()
    assert "<strong>$1.35</strong> on 5 jobs" in html
    assert "may have been charged up to $0.50 more" in html


def test_earlier_months_cover_the_last_year_only(alice_client, spending):
    months = get_spending(alice_client).context["earlier_months"]

    assert len(months) == 11
    assert [month["total"] for month in months if month["count"]] == [
        Decimal("0.30"),
        Decimal("0.20"),
    ]
    assert "$7.00" not in get_spending(alice_client).content.decode()


def test_bobs_spending_never_appears_for_alice(alice_client, spending):
    html = get_spending(alice_client).content.decode()

    assert "$9.99" not in html and SORA not in html


def test_budget_left_is_the_limit_less_spend_pending_and_holds(alice_client, alice, spending):
    set_budget(alice, "5.00")
    Job.objects.create(owner=alice, model=SORA, status=Job.Status.RUNNING, hold=Decimal("1.20"))

    response = get_spending(alice_client)

    # 5.00 - 1.35 spent - 0.50 that may have been charged - 1.20 held for the running job
    assert response.context["budget"].left == Decimal("1.95")
    html = response.content.decode()
    assert "<dd><strong>$1.95</strong></dd>" in html
    assert "up to $1.20, held until those videos finish" in html


def test_no_budget_means_no_limit(alice_client, spending, settings):
    settings.DEFAULT_MONTHLY_BUDGET = None

    html = get_spending(alice_client).content.decode()

    assert "<dt>Left this month</dt>\n    <dd>no limit</dd>" in html


def test_an_overspent_budget_shows_nothing_left(alice_client, alice, spending):
    set_budget(alice, "1.00")

    assert (
        "<dt>Left this month</dt>\n    <dd>$0.00</dd>"
        in get_spending(alice_client).content.decode()
    )


def test_the_daily_chart_is_an_svg_with_a_table_beside_it(alice_client, spending, this_month):
    response = get_spending(alice_client)

    html = response.content.decode()
    assert 'role="img" aria-labelledby="daily-spend-title daily-spend-desc"' in html
    assert f'<title id="daily-spend-title">Spend per day in {this_month:%B %Y}</title>' in html
    assert f"<title>{this_month:%Y-%m-%d}: $1.35 (5 jobs)</title>" in html
    days = response.context["days"]
    assert days[0]["day"] == this_month.date() and days[0]["total"] == Decimal("1.35")
    assert f"<td>{this_month:%Y-%m-%d}</td><td>5</td><td>$1.35</td>" in html


def test_a_new_user_sees_an_empty_month(alice_client):
    response = get_spending(alice_client)

    assert response.context["this_month"]["total"] == 0
    assert "No videos this month yet." in response.content.decode()
    assert "Nothing spent" in response.content.decode()


def test_the_spending_page_needs_a_login(client, db):
    response = client.get(reverse("spending"))

    assert response.status_code == 302 and response.url.startswith(reverse("login"))
