"""The admin cost review: figures against hand-computed sums, sorting, drill-down, the CSV,
reconciliation against the simulator's credits, budgets in the admin, and staff-only access."""

import csv
import html
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from jobs import services
from jobs.models import AuditEvent, Budget, CostEntry
from tests.factories import KLING, SORA, VEO, make_entry, set_budget, submit
from tests.helpers import run_job_now

# Users are made in every test here (fast_passwords: before them).
pytestmark = pytest.mark.usefixtures("fast_passwords")

MARCH = {"from": "2025-03-01", "to": "2025-03-31"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", password="carol-password-1")


@pytest.fixture
def ledger(alice, bob, carol):
    """March 2025, by hand: 6 entries costing $2.55 in all, $0.50 pending; two outside it."""
    make_entry(alice, KLING, "0.50", at("2025-03-01T00:00:00"))  # the first instant counts
    make_entry(alice, KLING, "0.25", at("2025-03-02T10:00:00"))
    make_entry(alice, VEO, "0.60", at("2025-03-02T11:00:00"))
    make_entry(bob, SORA, "1.20", at("2025-03-31T23:59:59"))  # the last second counts
    make_entry(
        bob,
        KLING,
        "0",
        at("2025-03-15T12:00:00"),
        outcome="unknown",
        possible=Decimal("0.50"),
    )
    make_entry(carol, VEO, "0", at("2025-03-15T13:00:00"), outcome="refunded")
    make_entry(alice, KLING, "9.00", at("2025-02-28T23:59:59"))  # outside, before
    make_entry(bob, SORA, "8.00", at("2025-04-01T00:00:00"))  # outside, after


def review(client, **params):
    response = client.get(reverse("costs:review"), {**MARCH, **params})
    assert response.status_code == 200
    return response


# Figures -------------------------------------------------------------------------------------


def test_the_review_adds_up_the_period_by_user_by_model_and_by_day(admin_client, ledger):
    response = review(admin_client)

    assert response.context["totals"] == {
        "total": Decimal("2.55"),
        "count": 6,
        "pending": Decimal("0.50"),
    }
    users = {
        row["username"]: (row["total"], row["count"], row["pending"])
        for row in response.context["users"]
    }
    assert users == {
        "alice": (Decimal("1.35"), 3, 0),
        "bob": (Decimal("1.20"), 2, Decimal("0.50")),
        "carol": (Decimal("0"), 1, 0),
    }
    models = {
        row["model"]: (row["total"], row["count"], row["pending"])
        for row in response.context["models"]
    }
    assert models == {
        KLING: (Decimal("0.75"), 3, Decimal("0.50")),
        VEO: (Decimal("0.60"), 2, 0),
        SORA: (Decimal("1.20"), 1, 0),
    }
    days = {f"{row['day']:%d}": (row["total"], row["count"]) for row in response.context["days"]}
    assert len(days) == 31  # every day of March, spent on or not
    assert days["01"] == (Decimal("0.50"), 1)
    assert days["02"] == (Decimal("0.85"), 2)
    assert days["15"] == (Decimal("0"), 2)
    assert days["31"] == (Decimal("1.20"), 1)
    assert sum(total for total, _ in days.values()) == Decimal("2.55")

    html = response.content.decode()
    assert "Spent in this period: <strong>$2.55</strong> on 6 jobs" in html
    assert "may have been charged up to $0.50 more" in html
    assert "$9.00" not in html and "$8.00" not in html


def test_the_daily_chart_is_an_inline_svg_with_a_title(admin_client, ledger):
    html = review(admin_client).content.decode()

    assert '<svg class="chart"' in html and 'role="img"' in html
    assert '<title id="review-daily-title">Spend per day, 2025-03-01 to 2025-03-31</title>' in html
    assert "<title>2025-03-02: $0.85 (2 jobs)</title>" in html
    assert html.count("<rect ") == 31


def test_the_period_defaults_to_this_month(admin_client, alice):
    make_entry(alice, KLING, "0.40", datetime.now(UTC))

    response = admin_client.get(reverse("costs:review"))

    period = response.context["period"]
    assert period.first_day.day == 1 and period.last_day == datetime.now(UTC).date()
    assert response.context["totals"]["total"] == Decimal("0.40")


def test_a_backwards_period_says_so_and_shows_this_month(admin_client, ledger):
    response = admin_client.get(reverse("costs:review"), {"from": "2025-03-31", "to": "2025-03-01"})

    assert "must start on or before its last day" in response.content.decode()
    assert response.context["period"].first_day == datetime.now(UTC).date().replace(day=1)


# Sorting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, ["alice", "bob", "carol"]),  # biggest spender first
        ("total", ["carol", "bob", "alice"]),
        ("name", ["alice", "bob", "carol"]),
        ("-name", ["carol", "bob", "alice"]),
        ("-count", ["alice", "bob", "carol"]),
        ("nonsense", ["alice", "bob", "carol"]),
    ],
)
def test_the_user_table_sorts(admin_client, ledger, sort, expected):
    params = {"user_sort": sort} if sort else {}
    response = review(admin_client, **params)

    assert [row["username"] for row in response.context["users"]] == expected


def test_the_model_and_day_tables_sort_on_their_own(admin_client, ledger):
    response = review(admin_client, model_sort="total", day_sort="-total")

    assert [row["model"] for row in response.context["models"]] == [VEO, KLING, SORA]
    assert [f"{row['day']:%d}" for row in response.context["days"][:3]] == ["31", "02", "01"]
    assert [row["username"] for row in response.context["users"]] == ["alice", "bob", "carol"]


def test_sort_links_flip_the_direction_and_keep_the_period(admin_client, ledger):
    response = review(admin_client, user_sort="-total")

    header = response.context["user_headers"]["total"]
    assert header["aria"] == "descending"
    assert "user_sort=total" in header["url"] and "from=2025-03-01" in header["url"]
    assert 'aria-sort="descending"' in response.content.decode()


# Drill-down ----------------------------------------------------------------------------------


def test_drilling_down_to_a_user_lists_only_their_entries_in_the_period(admin_client, ledger):
    response = admin_client.get(reverse("costs:entries"), {**MARCH, "user": "bob"})

    entries = list(response.context["page"])
    assert {entry.user.username for entry in entries} == {"bob"}
    assert sorted(entry.cost for entry in entries) == [Decimal("0"), Decimal("1.20")]
    assert response.context["totals"]["total"] == Decimal("1.20")
    assert (
        "/admin/costs/entries/?from=2025-03-01&amp;to=2025-03-31&amp;user=bob"
        in review(admin_client).content.decode()
    )


def test_drilling_down_to_a_model_lists_its_entries(admin_client, ledger):
    response = admin_client.get(reverse("costs:entries"), {**MARCH, "model": KLING})

    entries = list(response.context["page"])
    assert len(entries) == 3 and {entry.model for entry in entries} == {KLING}
    assert response.context["totals"] == {
        "total": Decimal("0.75"),
        "count": 3,
        "pending": Decimal("0.50"),
    }


def test_the_drill_down_is_paginated(admin_client, alice):
    # Through the ledger's service, which keeps the roll-ups the totals are read from.
    for _ in range(60):
        make_entry(alice, KLING, "0.10", at("2025-03-10T09:00:00"))

    first = admin_client.get(reverse("costs:entries"), {**MARCH, "user": "alice"})
    second = admin_client.get(reverse("costs:entries"), {**MARCH, "user": "alice", "page": 2})

    assert len(first.context["page"]) == 50 and len(second.context["page"]) == 10
    assert first.context["totals"]["total"] == Decimal("6.00")
    assert "Page 1 of 2" in first.content.decode()
    # The Next link, followed as a browser would, lands on page 2 of the same drill-down.
    next_href = re.search(r'<a href="([^"]+)">Next</a>', first.content.decode())[1]
    followed = admin_client.get(reverse("costs:entries") + html.unescape(next_href))
    assert followed.context["page"].number == 2 and len(followed.context["page"]) == 10


def test_a_drill_down_needs_a_known_user_or_a_model(admin_client, ledger):
    assert admin_client.get(reverse("costs:entries"), {"user": "nobody"}).status_code == 404
    assert admin_client.get(reverse("costs:entries")).status_code == 404


# CSV -----------------------------------------------------------------------------------------


def export(client, **params) -> list[dict]:
    response = client.get(reverse("costs:export"), {**MARCH, **params})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="ledger-2025-03-01-to-2025-03-31.csv"' in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_has_one_row_per_job_in_the_period(admin_client, ledger):
    rows = export(admin_client)

    assert list(rows[0]) == [
        "date",
        "user",
        "team",
        "model",
        "seconds",
        "size",
        "status",
        "cost",
        "possible_cost",
        "latency_ms",
    ]
    assert len(rows) == 6
    assert sum(Decimal(row["cost"]) for row in rows) == Decimal("2.55")
    assert rows[0]["date"] == "2025-03-01T00:00:00Z" and rows[-1]["date"] == "2025-03-31T23:59:59Z"
    first = rows[0]
    assert (first["user"], first["team"], first["model"], first["seconds"], first["size"]) == (
        "alice",
        "",  # a personal space
        KLING,
        "5",
        "1280x720",
    )
    assert (
        first["status"],
        Decimal(first["cost"]),
        first["possible_cost"],
        first["latency_ms"],
    ) == (
        "succeeded",
        Decimal("0.50"),
        "",
        "1500",
    )
    unknown = next(row for row in rows if row["possible_cost"])
    assert (unknown["user"], unknown["status"], Decimal(unknown["possible_cost"])) == (
        "bob",
        "failed",
        Decimal("0.50"),
    )


def test_the_csv_never_starts_a_cell_with_a_formula(admin_client, django_user_model):
    mallory = django_user_model.objects.create_user("@SUM(1+1)", password="x-password-1")
    make_entry(mallory, KLING, "0.10", at("2025-03-05T00:00:00"))

    assert export(admin_client)[0]["user"] == "'@SUM(1+1)"


# Reconciliation ------------------------------------------------------------------------------


@pytest.fixture
def reconciled_jobs(simulator, catalog, alice, bob):
    """Two kling jobs the simulator charged, and one whose connection dropped: the provider
    charged it (the top price, for 10 s at the largest size) but the studio can't know."""
    for user in (alice, bob):
        job = submit(user, "a fox in the snow", model=KLING, seconds="5")
        run_job_now(job.pk)
    simulator.inject({"kind": "drop", "after_seconds": 0.1})
    dropped = submit(alice, "a fox in the snow", model=KLING, seconds="10", size="1280x720")
    run_job_now(dropped.pk)
    dropped.refresh_from_db()
    assert dropped.outcome_unknown and dropped.possible_cost == Decimal("0.50")
    return dropped


def reconciliation(client):
    response = client.get(reverse("costs:reconciliation"))
    assert response.status_code == 200
    return response


def test_reconciliation_sets_the_studio_beside_the_simulators_credits(
    admin_client, simulator, reconciled_jobs
):
    charged = sum(CostEntry.objects.values_list("cost", flat=True), Decimal(0))
    assert charged == Decimal("0.68")  # 2 x $0.34: 5 s is half of kling's longest duration

    response = reconciliation(admin_client)

    context = response.context
    assert context["usage"] == Decimal("1.18")  # what the provider billed: 0.34 + 0.34 + 0.50
    assert context["all_time"]["total"] == context["in_period"]["total"] == Decimal("0.68")
    assert context["all_time"]["pending"] == Decimal("0.50")
    assert context["comparison"]["difference"] == Decimal("0.50")
    assert context["comparison"]["unexplained"] == 0
    html = response.content.decode()
    assert "The difference is within what those explain." in html
    assert "all time" in html and "cannot be cut to a period" in html
    assert "Mark charged" in html and "Mark not charged" in html


def test_marking_an_unknown_outcome_charged_makes_the_studio_match_the_provider(
    admin_client, admin_user, reconciled_jobs
):
    page = reverse("costs:reconciliation") + "?from=2020-01-01"
    response = admin_client.post(
        reverse("costs:reconcile", args=[reconciled_jobs.pk]),
        {"verdict": "charged", "next": page},
    )

    assert response.status_code == 302 and response.url == page
    entry = CostEntry.objects.get(job=reconciled_jobs)
    assert (entry.reconciliation, entry.cost, entry.reconciled_by) == (
        "charged",
        Decimal("0.50"),
        admin_user,
    )
    context = reconciliation(admin_client).context
    assert context["all_time"]["total"] == Decimal("1.18") == context["usage"]
    assert context["all_time"]["pending"] == 0
    assert context["comparison"]["difference"] == 0
    reconciled_jobs.refresh_from_db()
    assert reconciled_jobs.cost == Decimal("0.50")


def test_marking_it_not_charged_leaves_a_difference_nothing_explains(admin_client, reconciled_jobs):
    admin_client.post(
        reverse("costs:reconcile", args=[reconciled_jobs.pk]), {"verdict": "not_charged"}
    )

    entry = CostEntry.objects.get(job=reconciled_jobs)
    assert (entry.reconciliation, entry.cost) == ("not_charged", Decimal("0"))
    response = reconciliation(admin_client)
    assert response.context["all_time"]["total"] == Decimal("0.68")
    assert response.context["comparison"]["unexplained"] == Decimal("0.50")
    html = response.content.decode()
    assert "$0.50 is not explained by those" in html
    assert "0 to check, 1 in all." in html and "Mark charged" not in html
    checked = admin_client.get(reverse("costs:reconciliation"), {"show": "all"})
    assert [entry.job_id for entry in checked.context["page"]] == [reconciled_jobs.pk]
    assert "Checked: not charged ($0.00), by admin" in checked.content.decode()


def test_a_verdict_is_given_once_and_only_as_charged_or_not(admin_client, ledger):
    entry = CostEntry.objects.get(outcome="unknown")
    url = reverse("costs:reconcile", args=[entry.job_id])

    admin_client.post(url, {"verdict": "maybe"})
    assert CostEntry.objects.get(pk=entry.pk).reconciliation == "pending"
    admin_client.post(url, {"verdict": "not_charged"})
    response = admin_client.post(url, {"verdict": "charged"}, follow=True)

    assert CostEntry.objects.get(pk=entry.pk).reconciliation == "not_charged"
    assert "already checked" in response.content.decode()


def test_a_verdict_never_redirects_off_the_site(admin_client, ledger):
    entry = CostEntry.objects.get(outcome="unknown")

    response = admin_client.post(
        reverse("costs:reconcile", args=[entry.job_id]),
        {"verdict": "charged", "next": "https://evil.example/"},
    )

    assert response.url == reverse("costs:reconciliation")


def test_the_unknown_outcomes_list_is_for_the_period(admin_client, admin_user, ledger, bob):
    make_entry(
        bob, VEO, "0", at("2025-05-01T00:00:00"), outcome="unknown", possible=Decimal("0.60")
    )
    checked = make_entry(
        bob, SORA, "0", at("2025-03-20T00:00:00"), outcome="unknown", possible=Decimal("1.20")
    )
    services.ledger_reconcile(entry=checked, charged=True, by=admin_user)

    to_check = admin_client.get(reverse("costs:reconciliation"), MARCH)
    every = admin_client.get(reverse("costs:reconciliation"), {**MARCH, "show": "all"})

    assert [entry.model for entry in to_check.context["page"]] == [KLING]
    assert [entry.model for entry in every.context["page"]] == [SORA, KLING]  # newest first
    assert to_check.context["in_period"] == {
        "total": Decimal("3.75"),  # 2.55 + the 1.20 now counted as charged
        "count": 7,
        "pending": Decimal("0.50"),
        "unknown": 2,
        "to_check": 1,
    }
    assert to_check.context["all_time"] == {
        "total": Decimal("20.75"),  # 3.75 + the 9.00 and 8.00 outside March
        "count": 10,
        "pending": Decimal("1.10"),
    }


def test_an_unreachable_provider_gets_a_message_not_an_error(admin_client, settings, ledger):
    settings.IMAGEROUTER_BASE_URL = "http://127.0.0.1:9"  # the discard port: nothing listens

    response = admin_client.get(reverse("costs:reconciliation"), MARCH)

    assert response.status_code == 200
    assert response.context["comparison"] is None
    html = response.content.decode()
    assert "Could not read the provider's usage just now: Could not reach ImageRouter" in html
    assert "$2.55" in html


# Staff only ----------------------------------------------------------------------------------


def review_urls(job_id):
    return [
        ("get", reverse("costs:review")),
        ("get", reverse("costs:entries") + "?user=alice"),
        ("get", reverse("costs:export")),
        ("get", reverse("costs:reconciliation")),
        ("post", reverse("costs:reconcile", args=[job_id])),
    ]


def test_a_normal_user_is_sent_to_log_in_on_every_review_url(alice_client, ledger):
    entry = CostEntry.objects.get(outcome="unknown")
    for method, url in review_urls(entry.job_id):
        response = getattr(alice_client, method)(
            url, {"verdict": "charged"} if method == "post" else {}
        )
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("admin:login")), url
    assert CostEntry.objects.get(pk=entry.pk).reconciliation == "pending"


def test_a_visitor_is_sent_to_log_in_on_every_review_url(client, ledger):
    entry = CostEntry.objects.get(outcome="unknown")
    for method, url in review_urls(entry.job_id):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("admin:login")), url


def test_the_admin_index_links_to_the_review(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()

    assert f'href="{reverse("costs:review")}"' in html
    assert f'href="{reverse("costs:reconciliation")}"' in html


# The Django admin ----------------------------------------------------------------------------


def test_the_ledger_is_read_only_in_the_admin(admin_client, ledger):
    changelist = admin_client.get(
        reverse("admin:jobs_costentry_changelist"), {"outcome__exact": "unknown"}
    )
    entry = CostEntry.objects.get(outcome="unknown")
    change = admin_client.post(
        reverse("admin:jobs_costentry_change", args=[entry.pk]), {"cost": "99"}
    )

    assert changelist.status_code == 200
    assert list(changelist.context["cl"].result_list) == [entry]
    assert change.status_code == 403
    assert CostEntry.objects.get(pk=entry.pk).cost == 0
    assert admin_client.get(reverse("admin:jobs_costentry_add")).status_code == 403


def test_editing_a_budget_in_the_admin_records_who_changed_it(admin_client, admin_user, alice):
    set_budget(alice, "5.00")
    budget = Budget.objects.get(user=alice)

    response = admin_client.post(
        reverse("admin:jobs_budget_change", args=[budget.pk]),
        {"limit": "12.50", "period": "month"},
    )

    assert response.status_code == 302
    assert Budget.objects.get(pk=budget.pk).limit == Decimal("12.50")
    change = AuditEvent.objects.filter(user=alice).first()
    assert (change.actor, change.before["limit"], change.after["limit"]) == (
        admin_user,
        "5.00",
        "12.50",
    )
    page = admin_client.get(reverse("admin:jobs_budget_change", args=[budget.pk])).content.decode()
    assert "$5.00 a month → $12.50 a month" in page


def test_emptying_a_budget_means_no_limit_and_is_recorded(admin_client, admin_user, alice):
    set_budget(alice, "5.00")
    budget = Budget.objects.get(user=alice)

    admin_client.post(
        reverse("admin:jobs_budget_change", args=[budget.pk]), {"limit": "", "period": "month"}
    )

    assert Budget.objects.get(pk=budget.pk).limit is None
    change = AuditEvent.objects.filter(user=alice).first()
    assert (change.actor, change.after["limit"]) == (admin_user, None)


def test_adding_a_budget_in_the_admin_records_it_too(admin_client, admin_user, bob):
    response = admin_client.post(
        reverse("admin:jobs_budget_add"),
        {"level": "4", "user": bob.pk, "limit": "3", "period": "week"},
    )

    assert response.status_code == 302
    budget = Budget.objects.get(user=bob)
    assert (budget.limit, budget.period) == (Decimal("3"), "week")
    change = AuditEvent.objects.get(user=bob)
    assert (change.actor, change.before["limit"], change.after) == (
        admin_user,
        None,
        {"limit": "3.00", "period": "week"},
    )


def test_a_negative_budget_is_refused(admin_client, alice):
    response = admin_client.post(
        reverse("admin:jobs_budget_add"),
        {"level": "4", "user": alice.pk, "limit": "-1", "period": "month"},
    )

    assert response.status_code == 200
    assert "cannot be negative" in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.BUDGET_SET).exists()


def test_budget_changes_are_listed_read_only(admin_client, admin_user, alice):
    services.budget_set(user=alice, limit=Decimal("2"), changed_by=admin_user)

    response = admin_client.get(reverse("admin:jobs_auditevent_changelist"))
    users = admin_client.get(reverse("admin:auth_user_changelist")).content.decode()

    assert response.status_code == 200 and "alice" in response.content.decode()
    assert admin_client.get(reverse("admin:jobs_auditevent_add")).status_code == 403
    assert "$2" in users  # each user's budget, on the user list


def test_an_admin_can_mark_charged_with_the_amount_the_providers_logs_show(
    admin_client, reconciled_jobs
):
    admin_client.post(
        reverse("costs:reconcile", args=[reconciled_jobs.pk]),
        {"verdict": "charged", "amount": "$0.34"},
    )

    entry = CostEntry.objects.get(job=reconciled_jobs)
    assert (entry.reconciliation, entry.cost) == ("charged", Decimal("0.34"))


@pytest.mark.parametrize("amount", ["0.51", "-1", "lots"])
def test_an_impossible_charged_amount_is_refused_and_changes_nothing(
    admin_client, reconciled_jobs, amount
):
    response = admin_client.post(
        reverse("costs:reconcile", args=[reconciled_jobs.pk]),
        {"verdict": "charged", "amount": amount},
        follow=True,
    )

    html = response.content.decode()
    assert "between $0 and the possible cost, $0.50" in html or "is not an amount" in html
    assert CostEntry.objects.get(job=reconciled_jobs).reconciliation == "pending"
