"""The audit trail: every change to who may do what or how money is counted is recorded through
the path a person uses (admin, team pages, API tokens page, cost review, sign-in, commands), with
who, when, from which address, before and after; staff filter it and export it as CSV; nobody
can change or delete it, not even with SQL on PostgreSQL, and a deleted person is no longer
named in it."""

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from jobs import services
from jobs.models import (
    AccountEmail,
    ApiToken,
    AuditEvent,
    AuditEventImmutableError,
    Budget,
    CostEntry,
    ExternalIdentity,
    Membership,
    Team,
    VideoModel,
)
from jobs.services import tokens as token_services
from tests.factories import make_entry, set_budget, team_with

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action
KLING = "kling/kling-2.1-standard"


def events(action, **filters):
    found = AuditEvent.objects.filter(action=action, **filters)
    return list(found.select_related("actor", "user"))


def admin_form(client, url) -> dict:
    """What a browser posts back from an admin change page, unchanged: the main form's values
    and each inline's management form and rows."""
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        widget = field.widget
        if getattr(widget, "widgets", None):  # a split date and time
            parts = widget.decompress(value)
            for i, part in enumerate(parts):
                data[f"{name}_{i}"] = "" if part is None else str(part)
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        elif value is not None:
            data[name] = str(value)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for i, row in enumerate(formset.initial_forms):
            data[f"{formset.prefix}-{i}-id"] = row.instance.pk
    return data


def user_change(client, user, **changes):
    url = reverse("admin:auth_user_change", args=[user.pk])
    data = admin_form(client, url)
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = value
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]


# --- Accounts: active, staff, superuser, groups, permissions ------------------------------------


def test_making_someone_staff_in_the_admin_is_recorded_with_who_and_where(
    admin_client, admin_user, bob
):
    user_change(admin_client, bob, is_staff=True)

    (event,) = events(Action.USER_ACCESS, user=bob)
    assert (event.actor, event.user, event.address) == (admin_user, bob, "127.0.0.1")
    assert (event.before, event.after) == ({"is_staff": False}, {"is_staff": True})
    assert event.text == "Made bob staff"


def test_deactivating_an_account_in_the_admin_is_recorded(admin_client, admin_user, bob):
    user_change(admin_client, bob, is_active=False)

    (event,) = events(Action.USER_ACCESS, user=bob)
    assert event.text == "Deactivated bob's account"
    assert (event.actor, event.after) == (admin_user, {"is_active": False})


def test_the_address_is_the_clients_behind_a_trusted_proxy(admin_client, settings, bob):
    settings.TRUSTED_PROXY_COUNT = 1
    url = reverse("admin:auth_user_change", args=[bob.pk])
    data = admin_form(admin_client, url)
    data["is_superuser"] = "on"

    admin_client.post(url, data, HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")

    (event,) = events(Action.USER_ACCESS, user=bob)
    assert event.address == "203.0.113.9"  # what the proxy saw; the client wrote the rest
    assert event.text == "Made bob a superuser"


def test_saving_an_account_without_changing_its_access_records_nothing(admin_client, bob):
    user_change(admin_client, bob, first_name="Robert")

    assert not events(Action.USER_ACCESS, user=bob)


def test_a_superuser_made_on_the_command_line_is_recorded_as_the_servers(monkeypatch, db):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-password-1")

    call_command(
        "createsuperuser", "--noinput", username="root", email="root@example.com", verbosity=0
    )

    (event,) = events(Action.USER_ACCESS)
    assert (event.actor, event.had_actor, event.address) == (None, False, None)
    assert event.after == {"is_staff": True, "is_superuser": True}
    assert (
        event.text
        == "Made root staff, made root a superuser (on the server: a command or the shell)"
    )
    assert event.actor_name == "the studio"


def test_signing_up_records_nothing(client, db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("dora", password="dora-password-1")

    assert not AuditEvent.objects.exists()


def test_groups_and_permissions_given_in_the_admin_are_recorded(admin_client, admin_user, bob):
    editors = Group.objects.create(name="Editors")
    revoke = Permission.objects.get(codename="change_apitoken")

    user_change(admin_client, bob, groups=[str(editors.pk)], user_permissions=[str(revoke.pk)])

    changes = {next(iter(e.after)): e for e in events(Action.USER_PERMISSIONS)}
    assert changes["groups"].after == {"groups": ["Editors"]}
    assert changes["groups"].text == "bob's groups: +Editors"
    assert changes["permissions"].after == {"permissions": ["jobs.change_apitoken"]}
    assert changes["permissions"].text == "bob's permissions: +jobs.change_apitoken"
    assert all(e.actor == admin_user and e.user == bob for e in changes.values())


def test_a_groups_permissions_changed_in_the_admin_are_recorded(admin_client, admin_user):
    revoke = Permission.objects.get(codename="change_apitoken")

    response = admin_client.post(
        reverse("admin:auth_group_add"), {"name": "=Support", "permissions": [revoke.pk]}
    )

    assert response.status_code == 302
    (event,) = events(Action.GROUP_PERMISSIONS)
    assert event.actor == admin_user
    assert event.after == {"group": "=Support", "permissions": ["jobs.change_apitoken"]}
    assert event.text == "Group =Support's permissions: +jobs.change_apitoken"


def test_letting_someone_in_without_a_confirmed_address_is_recorded(admin_client, bob):
    row = AccountEmail.objects.create(user=bob, must_verify=True)
    url = reverse("admin:jobs_accountemail_change", args=[row.pk])
    data = admin_form(admin_client, url)
    data.pop("must_verify")

    assert admin_client.post(url, data).status_code == 302

    assert AccountEmail.objects.get(pk=row.pk).must_verify is False
    (event,) = events(Action.USER_VERIFICATION)
    assert event.text == "Let bob log in without confirming their address"
    assert event.before == {"must_verify": True}


def test_untying_a_single_sign_on_identity_in_the_admin_is_recorded(admin_client, bob):
    identity = ExternalIdentity.objects.create(
        issuer="https://idp.example.com", subject="bob-42", user=bob
    )

    response = admin_client.post(
        reverse("admin:jobs_externalidentity_delete", args=[identity.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not ExternalIdentity.objects.exists()
    (event,) = events(Action.USER_IDENTITY)
    assert event.text == "Untied bob's account from single sign-on at https://idp.example.com"


def test_deleting_an_account_in_the_admin_is_recorded_without_naming_it(admin_client, bob):
    services.membership_set(team=team_with("Design"), user=bob, by=None)

    response = admin_client.post(reverse("admin:auth_user_delete", args=[bob.pk]), {"post": "yes"})

    assert response.status_code == 302
    (deleted,) = events(Action.USER_DELETED)
    assert deleted.text == "Deleted an account" and deleted.user is None
    added = AuditEvent.objects.get(action=Action.MEMBER_ADDED)
    assert added.user is None  # its link was cleared, the trigger allowing it
    assert added.text == "Added a deleted account to the Design team as a member"


# --- Teams, budgets, models ---------------------------------------------------------------------


def test_deleting_a_team_in_the_admin_is_recorded_and_its_history_stays(admin_client, alice):
    team = team_with("Design", members=[alice])

    response = admin_client.post(reverse("admin:jobs_team_delete", args=[team.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Team.objects.exists()
    (event,) = events(Action.TEAM_DELETED)
    assert event.text == "Deleted the Design team (1 member)"
    assert event.team is None and event.before == {"name": "Design", "members": 1}
    assert AuditEvent.objects.filter(action=Action.MEMBER_ADDED, team__isnull=True).count() == 1


def test_deleting_a_budget_in_the_admin_is_recorded(admin_client, admin_user, alice):
    set_budget(alice, "5.00")
    budget = Budget.objects.get(user=alice)

    response = admin_client.post(
        reverse("admin:jobs_budget_delete", args=[budget.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    (event,) = events(Action.BUDGET_DELETED)
    assert event.text == "alice's personal budget: deleted (it was $5.00 a month)"
    assert (event.actor, event.user, event.before) == (
        admin_user,
        alice,
        {"limit": "5.00", "period": "month"},
    )


def test_a_managers_member_budget_on_the_team_page_records_their_address(client, alice, bob):
    team = team_with("Design", members=[bob], managers=[alice])
    row = f"member-{Membership.objects.get(team=team, user=bob).pk}"
    client.force_login(alice)

    response = client.post(
        reverse("teams:budgets", args=[team.pk]),
        {"member": "bob", f"{row}-limit": "4", f"{row}-period": "week"},
        REMOTE_ADDR="198.51.100.4",
    )

    assert response.status_code == 302
    (event,) = events(Action.BUDGET_SET)
    assert (event.actor, event.address) == (alice, "198.51.100.4")
    assert event.text == "bob's budget in the Design team: no limit → $4.00 a week"


def test_hiding_a_model_in_the_admin_is_recorded(admin_client, admin_user, catalog):
    url = reverse("admin:jobs_videomodel_change", args=[KLING])

    response = admin_client.post(url, {"visibility": "staff"})

    assert response.status_code == 302
    assert VideoModel.objects.get(pk=KLING).visibility == "staff"
    (event,) = events(Action.MODEL_VISIBILITY)
    assert event.text == f"{KLING} is now for staff only (it was open to everyone)"
    assert (event.actor, event.before["visibility"], event.after["visibility"]) == (
        admin_user,
        "everyone",
        "staff",
    )
    assert (
        admin_client.post(
            reverse("admin:jobs_videomodel_delete", args=[KLING]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_a_catalog_sync_records_the_models_it_adds_and_only_changes(simulator, db):
    services.catalog_sync()
    services.catalog_sync()

    (event,) = events(Action.CATALOG_SYNCED)
    assert event.actor is None and KLING in event.after
    assert event.text.startswith("The provider's catalog added ")
    assert "(open to everyone)" in event.text

    VideoModel.objects.filter(pk=KLING).delete()
    services.catalog_sync()

    assert len(events(Action.CATALOG_SYNCED)) == 2


# --- Money and tokens ---------------------------------------------------------------------------


def test_a_reconciliation_verdict_is_recorded(admin_client, admin_user, bob):
    from datetime import UTC, datetime

    entry = make_entry(
        bob, KLING, "0", datetime(2025, 3, 15, tzinfo=UTC), outcome="unknown",
        possible=Decimal("0.50"),
    )  # fmt: skip

    admin_client.post(
        reverse("costs:reconcile", args=[entry.job_id]), {"verdict": "charged", "amount": "0.34"}
    )

    assert CostEntry.objects.get(pk=entry.pk).reconciliation == "charged"
    (event,) = events(Action.COST_RECONCILED)
    assert (event.actor, event.user, event.address) == (admin_user, bob, "127.0.0.1")
    assert event.after == {"reconciliation": "charged", "cost": "0.340000"}
    assert event.before["reconciliation"] == "pending"
    assert event.text == (
        f"Marked bob's job {entry.job_id} on {KLING} charged: it counts $0.34 (possible cost $0.50)"
    )


def test_a_token_revoked_by_staff_in_the_admin_is_recorded(admin_client, admin_user, alice):
    token, _ = token_services.token_create(user=alice, name="ci")

    admin_client.post(
        reverse("admin:jobs_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    (event,) = events(Action.TOKEN_REVOKED)
    assert (event.actor, event.user, event.address) == (admin_user, alice, "127.0.0.1")
    assert event.text == f"Revoked alice's API token {token.prefix}…"


def test_a_token_revoked_by_its_owner_is_recorded_too(alice_client, alice):
    token, _ = token_services.token_create(user=alice, name="ci")

    alice_client.post(reverse("api_token_revoke", args=[token.pk]))

    (event,) = events(Action.TOKEN_REVOKED)
    assert event.actor == alice
    assert event.text.endswith("(by its owner)")


# --- Append-only --------------------------------------------------------------------------------


@pytest.fixture
def event(admin_user, alice):
    services.budget_set(user=alice, limit=Decimal("7"), changed_by=admin_user, address="192.0.2.1")
    return AuditEvent.objects.get(action=Action.BUDGET_SET)


def test_the_application_cannot_change_or_delete_an_event(event):
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(summary="nothing happened")
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(actor=None, summary="x")
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.summary = "nothing happened"
    with pytest.raises(AuditEventImmutableError):
        event.save()
    with pytest.raises(AuditEventImmutableError):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).text.startswith("alice's personal budget")


def _sql(statement, params):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_refuses_an_update_or_delete_that_gets_past_the_application(event):
    for statement in (
        "UPDATE jobs_auditevent SET summary = 'nothing happened' WHERE id = %s",
        "UPDATE jobs_auditevent SET address = '10.0.0.1' WHERE id = %s",
        "UPDATE jobs_auditevent SET actor_id = NULL, summary = 'x' WHERE id = %s",
        "UPDATE jobs_auditevent SET user_id = user_id + 1 WHERE id = %s",
        "DELETE FROM jobs_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            _sql(statement, [event.pk])

    _sql("UPDATE jobs_auditevent SET actor_id = NULL, user_id = NULL WHERE id = %s", [event.pk])

    cleared = AuditEvent.objects.get(pk=event.pk)
    assert (cleared.actor, cleared.user, cleared.address) == (None, None, "192.0.2.1")
    assert cleared.text.startswith("a deleted account's personal budget")


# --- Staff's list, filters, CSV -----------------------------------------------------------------


@pytest.fixture
def history(admin_user, alice, bob, django_user_model):
    """Changes by two staff (one later deleted), by the studio, in two teams."""
    carol = django_user_model.objects.create_user("carol", is_staff=True)
    design = team_with("Design", members=[alice])  # by the studio
    marketing = services.team_create(name='=HYPERLINK("http://x")', by=carol)
    services.membership_set(team=marketing, user=bob, by=carol, address="192.0.2.7")
    services.budget_set(
        level=Budget.Level.TEAM, team=design, limit=Decimal("50"), changed_by=admin_user
    )
    carol.delete()
    return design, marketing


def changelist(client, **params):
    response = client.get(reverse("admin:jobs_auditevent_changelist"), params)
    assert response.status_code == 200
    return [event.text for event in response.context["cl"].result_list]


def test_staff_filter_the_trail_by_action_actor_team_and_date(admin_client, admin_user, history):
    design, _ = history

    by_action = changelist(admin_client, action=Action.BUDGET_SET)
    by_admin = changelist(admin_client, actor=str(admin_user.pk))
    by_studio = changelist(admin_client, actor="studio")
    by_deleted = changelist(admin_client, actor="deleted")
    by_team = changelist(admin_client, team__id__exact=str(design.pk))
    today = changelist(admin_client, created_at__gte="2000-01-01 00:00:00+00:00")
    long_ago = changelist(admin_client, created_at__lt="2000-01-01 00:00:00+00:00")

    assert by_action == ["Design team: no limit → $50.00 a month"]
    assert by_admin == by_action
    assert "Added alice to the Design team as a member" in by_studio
    assert (
        "Made admin staff, made admin a superuser (on the server: a command or the shell)"
        in by_studio
    )
    assert by_deleted == [
        'Added bob to the =HYPERLINK("http://x") team as a member',
        'Created the =HYPERLINK("http://x") team',
    ]
    assert set(by_team) == {
        "Design team: no limit → $50.00 a month",
        "Added alice to the Design team as a member",
        "Created the Design team",
    }
    assert len(today) == AuditEvent.objects.count() and long_ago == []


def test_a_deleted_actor_is_shown_as_such_everywhere_without_an_error(admin_client, history):
    event = AuditEvent.objects.get(action=Action.MEMBER_ADDED, user__username="bob")

    page = admin_client.get(reverse("admin:jobs_auditevent_changelist")).content.decode()
    detail = admin_client.get(reverse("admin:jobs_auditevent_change", args=[event.pk]))

    assert "a deleted account" in page and "carol" not in page
    assert detail.status_code == 200 and "a deleted account" in detail.content.decode()
    assert "192.0.2.7" in detail.content.decode()


def test_staff_cannot_add_change_or_delete_an_event_in_the_admin(admin_client, history):
    event = AuditEvent.objects.first()

    assert admin_client.get(reverse("admin:jobs_auditevent_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:jobs_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    admin_client.post(
        reverse("admin:jobs_auditevent_change", args=[event.pk]), {"summary": "nothing"}
    )
    assert AuditEvent.objects.get(pk=event.pk).summary == event.summary
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def export(client, **params) -> list[dict]:
    response = client.get(reverse("admin:jobs_auditevent_export"), params)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_csv_is_the_filtered_list_and_never_starts_a_cell_with_a_formula(
    admin_client, admin_user, history
):
    everything = export(admin_client)
    deleted = export(admin_client, actor="deleted")

    assert len(everything) == AuditEvent.objects.count()
    assert [row["summary"] for row in deleted] == [
        'Added bob to the =HYPERLINK("http://x") team as a member',
        'Created the =HYPERLINK("http://x") team',
    ]
    added = deleted[0]
    assert (added["actor"], added["user"], added["address"]) == (
        "a deleted account",
        "bob",
        "192.0.2.7",
    )
    assert added["team"] == '\'=HYPERLINK("http://x")'
    assert added["action"] == "member.added" and added["after"] == (
        '{"role": "member", "source": "studio"}'
    )
    budget = export(admin_client, action=Action.BUDGET_SET)[0]
    assert budget["actor"] == "admin" and budget["before"] == '{"limit": null, "period": "month"}'
    assert budget["when_utc"].endswith("Z")


def test_only_staff_may_export_the_trail(client, alice, history):
    client.force_login(alice)

    response = client.get(reverse("admin:jobs_auditevent_export"))

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_sign_ins_group_sync_is_recorded_as_the_studios_from_the_sign_ins_address(db):
    Team.objects.create(name="Design", idp_group="design")

    carol = services.identity_sign_in(
        issuer="https://idp.example.com",
        claims={"sub": "carol-1", "groups": ["design"]},
        address="203.0.113.5",
    )

    (event,) = events(Action.MEMBER_ADDED)
    assert (event.actor, event.user, event.address) == (None, carol, "203.0.113.5")
    assert event.text == (
        f"Added {carol.get_username()} to the Design team as a member "
        "(identity provider groups, at sign-in)"
    )
