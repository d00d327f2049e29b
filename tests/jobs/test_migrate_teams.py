"""Existing users, budgets and jobs move to personal spaces with no change in what they see: their
monthly limit becomes a personal month budget, their budget history becomes audit events, and the
ledger is rolled up so "spent this month" is what it was."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("jobs", "0007_submit_keys_not_processed")]
AFTER = [("jobs", "0008_teams_budget_levels")]


@pytest.fixture
def executor(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    yield executor
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_budgets_jobs_and_ledger_become_personal(executor):
    old = executor.loader.project_state(BEFORE).apps
    User = old.get_model("auth", "User")
    Budget = old.get_model("jobs", "Budget")
    BudgetChange = old.get_model("jobs", "BudgetChange")
    Job = old.get_model("jobs", "Job")
    CostEntry = old.get_model("jobs", "CostEntry")
    carol = User.objects.create(username="carol")
    admin = User.objects.create(username="root", is_staff=True)
    Budget.objects.create(user=carol, monthly_limit=Decimal("5.00"))
    BudgetChange.objects.create(
        user=carol, changed_by=admin, old_limit=None, new_limit=Decimal("5.00")
    )
    now = timezone.now()
    for cost, possible, reconciliation in [
        ("0.40", None, ""),
        ("0", "0.50", "pending"),
        ("0.25", "0.25", "charged"),
    ]:
        job = Job.objects.create(owner=carol, model="m", status="succeeded")
        CostEntry.objects.create(
            job=job,
            user=carol,
            model="m",
            outcome="charged",
            cost=Decimal(cost),
            possible_cost=Decimal(possible) if possible else None,
            reconciliation=reconciliation,
            created_at=now,
        )

    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps

    budget = new.get_model("jobs", "Budget").objects.get(user_id=carol.pk)
    assert (budget.level, budget.limit, budget.period) == (4, Decimal("5.00"), "month")
    event = new.get_model("jobs", "AuditEvent").objects.get()
    assert (event.actor_id, event.user_id, event.action) == (admin.pk, carol.pk, "budget.set")
    assert event.summary == "carol's personal budget: no limit → $5.00 a month"
    assert new.get_model("jobs", "Job").objects.filter(team__isnull=True).count() == 3
    days = new.get_model("jobs", "SpendDay").objects.filter(day=now.astimezone(dt.UTC).date())
    rolled = {d.scope: (d.cost, d.pending) for d in days}
    # 0.40 + 0 + 0.25 spent; 0.50 still to check, which budgets count as spent.
    assert rolled == {
        "org": (Decimal("0.65"), Decimal("0.50")),
        f"user:{carol.pk}": (Decimal("0.65"), Decimal("0.50")),
    }
