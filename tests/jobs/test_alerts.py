"""Notices and alerts by email, against a real SMTP server on loopback (tests/smtp.py) and a real
worker on Redis: a job's owner hears that it is ready or failed (once, and not when switched
off or canceled); each budget notice reaches the people it concerns once, and nobody else;
staff get the daily list of jobs to check; managers and staff who opted in get the weekly
digest; a beat that fires twice sends once."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from jobs import periods, services, tasks
from jobs.models import AlertPreferences, Budget, BudgetNotice, Job, OutgoingEmail
from tests.factories import KLING, TEST_MODEL, VEO, make_entry, submit, team_with
from tests.helpers import at_once, wait_for, wait_until_finished
from tests.smtp import html_of, text_of

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalog", "broker_url"),
]


@pytest.fixture
def person(django_user_model):
    def make(name, **fields):
        return django_user_model.objects.create_user(
            name, f"{name}@example.com", "pw", first_name=name.title(), **fields
        )

    return make


def all_sent(count: int):
    """Wait until `count` messages are marked sent, and none is waiting; then the outbox."""
    wait_for(
        lambda: (
            OutgoingEmail.objects.filter(status="sent").count() == count
            and not OutgoingEmail.objects.filter(status="pending").exists()
        ),
        what=f"{count} message(s) sent",
    )
    return OutgoingEmail.objects.all()


def addressed(mailbox) -> list[str]:
    return sorted(m["X-Envelope-To"] for m in mailbox.messages)


def budget(level, limit, period="month", **subject) -> Budget:
    return services.budget_set(
        level=level, limit=Decimal(limit), period=period, changed_by=None, **subject
    )


def prefer(user, **choices):
    AlertPreferences.objects.update_or_create(user=user, defaults=choices)


# --- A video is ready, or failed -----------------------------------------------------------------


def test_the_owner_is_emailed_once_when_their_video_is_ready(worker, smtp_server, person):
    alice = person("alice")
    job = submit(alice, "a lighthouse in a storm")
    job = wait_until_finished(job)
    assert job.status == Job.Status.SUCCEEDED

    (message,) = smtp_server.mailbox.wait_for(1)
    assert message["X-Envelope-To"] == "alice@example.com"
    assert message["Subject"] == "Your video is ready: a lighthouse in a storm"
    text = text_of(message)
    assert "Hello Alice," in text
    assert f"http://127.0.0.1:8000/jobs/{job.pk}/" in text
    assert "Cost: free" in text
    assert "you asked to be emailed when a video of yours is ready" in text
    assert "http://127.0.0.1:8000/account/notifications/" in text
    assert f'href="http://127.0.0.1:8000/jobs/{job.pk}/"' in html_of(message)

    # A duplicate store message finds the job stored already: no second email.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.STORING)
    services.job_store(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    assert [e.key for e in all_sent(1)] == [f"job-succeeded:{job.pk}"]
    assert len(smtp_server.mailbox.messages) == 1


def test_the_owner_hears_why_a_video_failed(worker, smtp_server, simulator, person):
    alice = person("alice")
    simulator.inject(
        {"kind": "http_error", "status": 400, "message": "Prompt refused by the filter"}
    )
    job = wait_until_finished(submit(alice, "a forbidden thing"))
    assert job.status == Job.Status.FAILED

    (message,) = smtp_server.mailbox.wait_for(1)
    assert message["Subject"] == "Your video failed: a forbidden thing"
    text = text_of(message)
    assert job.error in text
    assert "Nothing was charged." in text
    assert f"http://127.0.0.1:8000/jobs/{job.pk}/" in text
    assert [e.key for e in all_sent(1)] == [f"job-failed:{job.pk}"]


def test_a_job_whose_worker_died_is_emailed_as_failed_and_maybe_charged(
    worker, smtp_server, person, settings
):
    """The sweeper fails a job whose worker died mid-call: its owner hears of it, once."""
    alice = person("alice")
    started = timezone.now() - timedelta(seconds=settings.JOB_RUNNING_DEADLINE + 60)
    job = Job.objects.create(
        owner=alice, model=KLING, prompt="a slow one", status="running", started_at=started
    )

    services.sweep()
    services.sweep()

    (message,) = smtp_server.mailbox.wait_for(1)
    assert message["Subject"] == "Your video failed: a slow one"
    assert "It may have been charged, up to $0.50" in text_of(message)
    assert [e.key for e in all_sent(1)] == [f"job-failed:{job.pk}"]


def test_no_email_when_switched_off_or_canceled(worker, smtp_server, simulator, person):
    alice, bob = person("alice"), person("bob")
    prefer(alice, job_ready=False)
    prefer(bob, job_failed=False)
    ready = wait_until_finished(submit(alice))
    simulator.inject(
        {"kind": "http_error", "status": 400, "message": "Prompt refused by the filter"}
    )
    failed = wait_until_finished(submit(bob))
    assert (ready.status, failed.status) == (Job.Status.SUCCEEDED, Job.Status.FAILED)

    # Bob still hears that a video is ready (only failures are off for him)...
    wait_until_finished(submit(bob, "a second try"))
    # ...and nobody hears about a video they canceled (a queued job no worker took yet).
    canceled = Job.objects.create(owner=alice, model=TEST_MODEL, prompt="never mind")
    assert services.job_cancel(job=canceled)

    (message,) = smtp_server.mailbox.wait_for(1)
    assert message["Subject"] == "Your video is ready: a second try"
    assert addressed(smtp_server.mailbox) == ["bob@example.com"]
    second = Job.objects.get(prompt="a second try")
    assert [e.key for e in all_sent(1)] == [f"job-succeeded:{second.pk}"]


def test_a_video_made_through_an_api_token_is_emailed_too(worker, smtp_server, person, api):
    alice = person("alice")
    _, key = services.tokens.token_create(user=alice, name="nightly renders")
    response = api.post(
        key, "/v1/openai/videos/generations", json={"prompt": "a fox", "model": TEST_MODEL}
    )
    body = b"".join(response.streaming_content)  # the synchronous answer waits for the video
    response.close()  # as a server does once it is sent: this process's wait slot goes back
    assert response.status_code == 200, body
    assert json.loads(body)["data"][0]["url"]
    (message,) = smtp_server.mailbox.wait_for(1)
    assert message["Subject"] == "Your video is ready: a fox"
    assert 'made through your API token "nightly renders"' in text_of(message)


# --- Budget threshold notices ----------------------------------------------------------------------


@pytest.fixture
def design(person):
    """Design team: Maria manages it, Alice and Carl are members; Xavier manages Sales, where
    Alice is not. Olga is staff."""
    people = {name: person(name) for name in ("maria", "alice", "carl", "xavier")}
    people["olga"] = person("olga", is_staff=True)
    team = team_with(
        "Design", managers=[people["maria"]], members=[people["alice"], people["carl"]]
    )
    team_with("Sales", managers=[people["xavier"]], members=[people["carl"]])
    return team, people


def spend(user, cost, *, team=None, model=VEO):
    return make_entry(user, model, cost, timezone.now(), team=team)


def test_a_team_budget_notice_reaches_its_managers_only(worker, smtp_server, design):
    team, people = design
    budget(Budget.Level.TEAM, "20.00", team=team)

    spend(people["alice"], "16.40", team=team)

    (eighty,) = smtp_server.mailbox.wait_for(1)
    all_sent(1)
    # 50% and 80% were crossed at once: one email, about 80%, to the team's manager alone.
    assert addressed(smtp_server.mailbox) == ["maria@example.com"]
    assert eighty["Subject"] == "Design team has used 80% of its monthly budget"
    text = text_of(eighty)
    resets = periods.resets_words("month")
    assert f"Design team has used 80% of its $20.00 monthly budget ($16.40 spent); {resets}." in (
        " ".join(text.split())
    )
    assert f"http://127.0.0.1:8000/teams/{team.pk}/review/" in text
    assert "You get this because you manage the Design team." in text
    assert "http://127.0.0.1:8000/account/notifications/" in text
    notices = BudgetNotice.objects.filter(budget__level=Budget.Level.TEAM)
    assert sorted(notices.values_list("threshold", flat=True)) == [50, 80]
    assert all(n.emailed_at for n in notices)
    assert list(OutgoingEmail.objects.values_list("key", flat=True)) == [
        f"budget-notice:{notices.get(threshold=80).pk}:{people['maria'].pk}"
    ]
    assert "Design team has used 80% of its $20.00 monthly budget" in html_of(eighty)

    spend(people["carl"], "4.00", team=team)  # now past 100%: a new notice, a new email
    all_sent(2)
    assert smtp_server.mailbox.messages[1]["Subject"] == (
        "Design team has used all of its monthly budget"
    )


def test_a_member_budget_notice_reaches_the_member_and_the_managers(worker, smtp_server, design):
    team, people = design
    budget(Budget.Level.MEMBER, "1.00", team=team, user=people["alice"])

    spend(people["alice"], "1.10", team=team)

    all_sent(2)  # 50, 80 and 100% at once: the 100% one, to Alice and to Maria
    mailbox = smtp_server.mailbox
    assert addressed(mailbox) == ["alice@example.com", "maria@example.com"]
    (alice_all,) = mailbox.to("alice@example.com")
    words = " ".join(text_of(alice_all).split())
    assert (
        "You have used all of your $1.00 monthly budget in the Design team ($1.10 spent)" in words
    )
    assert "Videos charged there are refused until it resets or its limit is raised." in words
    assert "http://127.0.0.1:8000/spending/" in words
    assert "it is about your own budget" in words
    (maria_all,) = mailbox.to("maria@example.com")
    assert "alice has used all of their $1.00 monthly budget in the Design team" in " ".join(
        text_of(maria_all).split()
    )


def test_personal_token_and_organization_notices_reach_their_people(worker, smtp_server, design):
    _, people = design
    alice, olga = people["alice"], people["olga"]
    budget(Budget.Level.PERSONAL, "2.00", period="week", user=alice)
    token, _ = services.tokens.token_create(user=alice, name="nightly renders")
    budget(Budget.Level.TOKEN, "10.00", token=token)
    budget(Budget.Level.ORGANIZATION, "100.00")
    prefer(olga, budget_organization=True)

    make_entry(alice, VEO, "1.20", timezone.now(), token=token)  # 60% of 2, 12% of 10
    spend(people["carl"], "49.00")  # with Alice's: 50.20 of the organization's 100

    all_sent(2)
    mailbox = smtp_server.mailbox
    assert addressed(mailbox) == ["alice@example.com", "olga@example.com"]
    (alice_mail,) = mailbox.to("alice@example.com")
    assert alice_mail["Subject"] == "You have used 50% of your weekly personal budget"
    (olga_mail,) = mailbox.to("olga@example.com")
    assert (
        olga_mail["Subject"] == "The organization has used 50% of its monthly organization budget"
    )
    assert "http://127.0.0.1:8000/admin/costs/" in text_of(olga_mail)
    # Nobody else is staff or concerned: not the managers, not Carl (who has no budget).


def test_a_token_budget_notice_names_the_token(smtp_server, design):
    alice = design[1]["alice"]
    token, _ = services.tokens.token_create(user=alice, name="nightly renders")
    budget(Budget.Level.TOKEN, "1.00", token=token)
    make_entry(alice, VEO, "0.60", timezone.now(), token=token)
    subjects = list(OutgoingEmail.objects.values_list("subject", flat=True))
    assert subjects == ["Your API token “nightly renders” has used 50% of its monthly budget"]
    assert "http://127.0.0.1:8000/api-tokens/" in OutgoingEmail.objects.first().text


def test_switched_off_alerts_are_not_sent_and_outsiders_hear_nothing(smtp_server, design):
    team, people = design
    prefer(people["maria"], budget_teams=False)
    prefer(people["carl"], budget_own=False)
    budget(Budget.Level.TEAM, "1.00", team=team)
    budget(Budget.Level.MEMBER, "1.00", team=team, user=people["carl"])

    spend(people["carl"], "0.60", team=team)  # 60% of the team's and of Carl's

    assert BudgetNotice.objects.count() == 2
    assert all(n.emailed_at for n in BudgetNotice.objects.all())
    assert not OutgoingEmail.objects.exists()


def test_racing_settlements_send_each_notice_once_to_each_person(worker, smtp_server, design):
    team, people = design
    """Six settlements at once, each of which finds 50% crossed (and none 80%): every one of
    them reports the same two notices, and each person hears of each once."""
    budget(Budget.Level.TEAM, "10.00", team=team)
    budget(Budget.Level.MEMBER, "10.00", team=team, user=people["alice"])
    spend(people["alice"], "4.90", team=team)  # 49%: no notice yet

    _, _, errors = at_once(6, lambda n: spend(people["alice"], "0.20", team=team), refusal=())

    assert errors == []
    notices = BudgetNotice.objects.all()
    assert sorted(notices.values_list("level", "threshold")) == [
        (Budget.Level.TEAM, 50),
        (Budget.Level.MEMBER, 50),
    ]
    all_sent(3)  # the team's to Maria; Alice's to Alice and to Maria
    seen = [(m["X-Envelope-To"], m["Subject"]) for m in smtp_server.mailbox.messages]
    assert sorted(seen) == [
        ("alice@example.com", "You have used 50% of your monthly budget in the Design team"),
        ("maria@example.com", "Design team has used 50% of its monthly budget"),
        ("maria@example.com", "alice has used 50% of their monthly budget in the Design team"),
    ]


def test_the_sweeper_emails_a_notice_whose_hook_was_lost(worker, smtp_server, design):
    team, people = design
    notice = BudgetNotice.objects.create(
        budget=budget(Budget.Level.TEAM, "10.00", team=team),
        level=Budget.Level.TEAM,
        team=team,
        period="month",
        period_start=periods.period_start("month", periods.utc_today()),
        threshold=80,
        limit=Decimal("10.00"),
        spent=Decimal("8.50"),
    )  # what a worker that died between its commit and the on-commit hook leaves

    services.sweep()
    services.sweep()

    (message,) = smtp_server.mailbox.wait_for(1)
    assert message["X-Envelope-To"] == "maria@example.com"
    assert "Design team has used 80% of its $10.00 monthly budget ($8.50 spent)" in text_of(message)
    assert [e.key for e in all_sent(1)] == [f"budget-notice:{notice.pk}:{people['maria'].pk}"]


# --- Scheduled: the daily summary for staff and the weekly digest ---------------------------------


def test_staff_get_the_daily_list_of_jobs_to_check_once_a_day(worker, smtp_server, person):
    alice = person("alice")
    olga, omar = person("olga", is_staff=True), person("omar", is_staff=True)
    prefer(omar, unknown_summary=False)
    make_entry(alice, KLING, "0", timezone.now(), outcome="unknown", possible=Decimal("0.50"))
    make_entry(alice, VEO, "0", timezone.now(), outcome="unknown", possible=Decimal("0.60"))
    checked = make_entry(alice, VEO, "0", timezone.now(), outcome="unknown", possible=Decimal(1))
    services.ledger_reconcile(entry=checked, charged=False, by=olga)

    # Beat fires twice at once (two schedulers, or a restart at the minute): each runs to its end.
    _, _, errors = at_once(2, lambda n: tasks.send_unknown_summary(), refusal=())
    assert errors == []

    (message,) = smtp_server.mailbox.wait_for(1)
    assert message["X-Envelope-To"] == "olga@example.com"
    assert message["Subject"] == "2 jobs may have been charged: please check with ImageRouter"
    text = text_of(message)
    assert "up to $1.10 in all" in text
    assert f"alice, {KLING}, up to $0.50" in text and f"alice, {VEO}, up to $0.60" in text
    assert "http://127.0.0.1:8000/admin/costs/reconciliation/" in text
    today = periods.utc_today().isoformat()
    assert [e.key for e in all_sent(1)] == [f"unknown-summary:{today}:{olga.pk}"]


def test_no_summary_when_nothing_is_left_to_check(smtp_server, person):
    person("olga", is_staff=True)
    make_entry(person("alice"), VEO, "0.60", timezone.now())
    assert services.staff_unknown_summary_send() == 0
    assert not OutgoingEmail.objects.exists()


@pytest.fixture
def two_weeks(design):
    """Spend in the week before last and last week (Monday to Sunday, UTC), in Design team,
    in Sales and in a personal space."""
    team, people = design
    sales = team.__class__.objects.get(name="Sales")
    today = periods.utc_today()
    last_monday = today - timedelta(days=today.weekday() + 7)

    def at(monday, day, hour=12):
        return datetime.combine(monday + timedelta(days=day), datetime.min.time(), UTC).replace(
            hour=hour
        )

    before = last_monday - timedelta(days=7)
    make_entry(people["alice"], VEO, "2.00", at(before, 3), team=team)
    make_entry(people["alice"], VEO, "1.20", at(last_monday, 0, 0), team=team)  # Monday 00:00
    make_entry(people["alice"], KLING, "0.50", at(last_monday, 2), team=team)
    make_entry(people["carl"], VEO, "0.60", at(last_monday, 6, 23), team=team)  # Sunday 23:00
    make_entry(people["carl"], VEO, "9.00", at(last_monday, 4), team=sales)
    make_entry(people["carl"], KLING, "0.40", at(last_monday, 4))
    make_entry(people["carl"], VEO, "5.00", at(today - timedelta(days=today.weekday()), 0, 1))
    return team, people, last_monday


def test_the_weekly_digest_gives_each_opted_in_reader_their_scopes_figures(
    worker, smtp_server, two_weeks
):
    team, people, monday = two_weeks
    sales = team.__class__.objects.get(name="Sales")
    services.membership_set(team=sales, user=people["olga"], role="manager", by=None)
    for name in ("maria", "olga"):
        prefer(people[name], weekly_digest=True)
    # Xavier (Sales) did not opt in; Alice and Carl are not managers.
    prefer(people["alice"], weekly_digest=True)

    # Beat fires twice at once (two schedulers, or a restart at the minute): each runs to its end.
    _, _, errors = at_once(2, lambda n: tasks.send_weekly_digests(), refusal=())
    assert errors == []

    smtp_server.mailbox.wait_for(2)
    year, week, _ = monday.isocalendar()
    keys = sorted(e.key for e in all_sent(2))
    assert keys == sorted(
        f"digest:{year}-W{week:02d}:{people[name].pk}" for name in ("maria", "olga")
    )
    (maria,) = smtp_server.mailbox.to("maria@example.com")
    text = " ".join(text_of(maria).split())
    assert (
        maria["Subject"] == f"Spend in the week of {monday.day} {monday:%b %Y}: Design team $2.30"
    )
    assert "Design team: $2.30 on 3 jobs, up $0.30 (+15%) on the week before ($2.00)." in text
    assert f"Top models: {VEO}: $1.80 (2 jobs) {KLING}: $0.50 (1 job)" in text
    assert "Top members: alice: $1.70 (2 jobs) carl: $0.60 (1 job)" in text
    assert "Sales" not in text and "$9.00" not in text  # another team's spend
    sunday = monday + timedelta(days=6)
    review = f"http://127.0.0.1:8000/teams/{team.pk}/review/?from={monday}&to={sunday}"
    assert review in text
    (olga,) = smtp_server.mailbox.to("olga@example.com")
    text = " ".join(text_of(olga).split())
    assert "The organization: $11.70 on 5 jobs, up $9.70 (+485%) on the week before ($2.00)." in (
        text
    )
    assert "Top members: carl: $10.00 (3 jobs) alice: $1.70 (2 jobs)" in text
    # Olga also manages Sales: its section follows the organization's, in the same email.
    assert "Sales team: $9.00 on 1 job, up $9.00 on the week before ($0.00)." in text
    assert olga["Subject"].endswith("The organization $11.70, Sales team $9.00")
    assert f"http://127.0.0.1:8000/admin/costs/?from={monday}&to={sunday}" in text
    assert "you asked for the weekly spend digest" in text
    assert "http://127.0.0.1:8000/account/notifications/" in text


def test_a_member_no_longer_in_the_team_hears_nothing_of_their_old_budget(smtp_server, design):
    team, people = design
    budget(Budget.Level.MEMBER, "1.00", team=team, user=people["alice"])
    make_entry(people["alice"], VEO, "0.60", timezone.now(), team=team)
    assert sorted(OutgoingEmail.objects.values_list("to", flat=True)) == [
        "alice@example.com",
        "maria@example.com",
    ]
    OutgoingEmail.objects.all().delete()

    services.membership_remove(team=team, user=people["alice"], by=None)
    notice = BudgetNotice.objects.get(threshold=50)
    BudgetNotice.objects.filter(pk=notice.pk).update(emailed_at=None)  # delivered late
    services.budget_notices_email()

    assert list(OutgoingEmail.objects.values_list("to", flat=True)) == ["maria@example.com"]


def test_a_notice_emailed_after_its_period_says_the_period_ended(design):
    from jobs.services.alerts import budget_notice_words

    team, people = design
    notice = BudgetNotice(
        budget=Budget(level=Budget.Level.TEAM, team=team),
        level=Budget.Level.TEAM,
        team=team,
        period="week",
        period_start=datetime(2026, 11, 23, tzinfo=UTC).date(),
        threshold=100,
        limit=Decimal("5"),
        spent=Decimal("5.25"),
    )
    words = budget_notice_words(
        notice, reader=people["maria"], why="manager", today=datetime(2026, 12, 2).date()
    )
    assert words["sentence"] == (
        "Design team has used all of its $5.00 weekly budget ($5.25 spent); "
        "that ISO week ended on 30 Nov."
    )


def test_beat_runs_the_summary_daily_and_the_digest_on_mondays_at_fixed_utc_hours(settings):
    from celery.schedules import crontab

    schedule = {e["task"]: e["schedule"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["jobs.tasks.send_unknown_summary"] == crontab(hour=8, minute=0)
    assert schedule["jobs.tasks.send_weekly_digests"] == crontab(
        hour=8, minute=0, day_of_week="mon"
    )
    assert tasks.send_unknown_summary.name in tasks.send_unknown_summary.app.tasks
