"""Provider-side caps: with IMAGEROUTER_MANAGEMENT_KEY set, every job calls ImageRouter with a key
of its own place (its team, or its owner's personal space), minted by the studio and capped at the
provider by that place's budget. A bug in the studio's own accounting then still cannot spend past
a budget: the provider refuses. README, "Provider-side caps", says what an operator sets.

Keys are minted only by workers (a job that needs one, or the renewal pass on beat), never in a
web request, and never inside a transaction or a row lock: the claim is a row (ProviderKey,
status MINTING) that a unique constraint lets one caller per place and window insert.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import encryption, imagerouter, periods, selectors
from jobs.models import AuditEvent, Budget, ProviderKey, audit_quote, spend_scope

from .audit import audit_record

logger = logging.getLogger(__name__)

# A key is accepted by the provider this long after its window ends, so that a call begun just
# before the end still works; the studio stops choosing it at the end itself.
EXPIRY_GRACE = timedelta(hours=1)
# The renewal pass mints a place's next key this long before its current key's window ends.
RENEW_AHEAD = timedelta(hours=1)
# A MINTING claim older than this belongs to a worker presumed dead: another may take it over.
# Longer than a mint can take (ImageRouterClient.mint_key: the connect timeout and 30 s).
MINT_STALE = timedelta(minutes=2)
# How long a job waits for another worker's mint before it goes back to the queue.
MINT_WAIT_SECONDS = 150
RENEW_BATCH = 200


class ProviderKeyUnavailableError(Exception):
    """No key could be had for the job's place. `message` is for the job's owner; `retry` says
    whether the provider certainly did nothing, so that the job may simply wait and try again."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry = retry
        self.retry_after = retry_after


def enabled() -> bool:
    return bool(settings.IMAGEROUTER_MANAGEMENT_KEY)


# The place a key serves, and the budget it follows ----------------------------------------------


@dataclass(frozen=True)
class Place:
    scope: str  # "team:<id>" or "user:<id>", as the budgets' roll-up names it
    team: object = None
    user: object = None

    @property
    def label(self) -> str:
        if self.team is not None:
            return f"the {self.team.label}"
        return f"{self.user.get_username()}'s personal space"


def place_of_job(job) -> Place:
    """Where the job is charged (Job.team; None: its owner's personal space)."""
    if job.team_id is not None:
        return Place(spend_scope(Budget.Level.TEAM, team_id=job.team_id), team=job.team)
    return Place(spend_scope(Budget.Level.PERSONAL, user_id=job.owner_id), user=job.owner)


def place_of_key(key: ProviderKey) -> Place | None:
    if key.team_id is not None:
        return Place(key.place, team=key.team)
    if key.user_id is not None:
        return Place(key.place, user=key.user)
    return None  # the person was deleted: nobody will call with it again


@dataclass(frozen=True)
class Terms:
    """What a place's key must follow at a moment: its budget's limit and period, and the
    period's window in UTC."""

    limit: Decimal | None
    period: str
    window_start: datetime
    window_end: datetime


def terms_for(place: Place, *, at: datetime) -> Terms:
    budget = selectors.place_budget(team=place.team, user=place.user)
    if budget is not None:
        limit, period = budget.limit, budget.period
    elif place.team is not None:
        limit, period = None, periods.MONTH  # no team budget: no limit
    else:
        limit, period = settings.DEFAULT_MONTHLY_BUDGET, periods.MONTH
    day = periods.utc_today(at)
    start = periods.period_start(period, day)
    end = periods.period_end(period, day)
    return Terms(
        limit=limit,
        period=period,
        window_start=datetime(start.year, start.month, start.day, tzinfo=UTC),
        window_end=datetime(end.year, end.month, end.day, tzinfo=UTC),
    )


def follows(key: ProviderKey, terms: Terms) -> bool:
    return (
        key.budget_limit == terms.limit
        and key.budget_period == terms.period
        and key.window_start == terms.window_start
    )


# A job's key -------------------------------------------------------------------------------------


def provider_key_for_job(*, job) -> tuple[ProviderKey, str]:
    """The live key of the job's place and its secret (decrypted, for this call only), minting
    one if need be. Runs in the worker, outside any transaction.

    1. Read the budget that applies and the place's live key whose window holds now.
    2. Active and still following the budget: use it (and note that it was used).
    3. Active but the budget changed (or its secret is unreadable): retire it with one
       conditional UPDATE, so the old key is never chosen again, and start over.
    4. No key: insert a MINTING row, the claim. The unique constraint on (place, window) lets
       one caller in; a caller that loses the race starts over and finds that row.
    5. Another caller's MINTING row: wait for it to become active; if its claim is older than
       MINT_STALE its minter is presumed dead, and a conditional UPDATE of the claim takes it
       over (the old minter, should it finish after all, finds its claim gone and records its
       key as retired, never used).
    """
    place = place_of_job(job)
    key, secret = _live_or_minted(place)
    ProviderKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key, secret


def _live_or_minted(place: Place) -> tuple[ProviderKey, str]:
    waited_until = time.monotonic() + MINT_WAIT_SECONDS
    while True:
        now = timezone.now()
        terms = terms_for(place, at=now)
        key = selectors.live_provider_key(place=place.scope, now=now)
        if key is not None and not follows(key, terms):
            provider_key_retire(key=key, because="its budget changed")
            continue
        if key is None:
            claimed = _claim(place, terms, now=now)
            if claimed is not None and (minted := _mint(claimed, place, terms)) is not None:
                return minted
            continue
        if key.status == ProviderKey.Status.ACTIVE:
            try:
                return key, encryption.decrypt(key.secret_encrypted)
            except encryption.SecretUnreadableError:
                logger.error("provider key %s: secret unreadable; retiring it", key.pk)
                provider_key_retire(key=key, because="its secret could not be decrypted")
                continue
        if key.minting_since is None or key.minting_since < now - MINT_STALE:
            taken = _take_over(key, now=now)
            if taken is not None and (minted := _mint(taken, place, terms)) is not None:
                return minted
            continue
        if time.monotonic() > waited_until:
            raise ProviderKeyUnavailableError(
                f"The studio is still getting an ImageRouter key for {place.label}; this video "
                "will be tried again shortly. Nothing was charged.",
                retry=True,
            )
        time.sleep(0.2)


def provider_key_retire(*, key: ProviderKey, because: str) -> bool:
    """Stop choosing `key`: one conditional UPDATE, so that of racing callers one retires it.
    The provider cannot be told (it has no API to disable a key); the key expires there by
    itself at `expires_at`."""
    retired = ProviderKey.objects.filter(pk=key.pk, retired_at__isnull=True).update(
        retired_at=timezone.now(), retired_because=because[:200]
    )
    if retired:
        logger.info("provider key %s (%s): retired, %s", key.pk, key.name, because)
    return bool(retired)


def _key_name(place: Place, terms: Terms, key_id: uuid.UUID) -> str:
    """The name the provider's dashboard shows: the studio, the place, the window, and a short
    id to tell two keys of one window apart. A person is named by their id only: the provider
    keeps the name after the person has gone."""
    who = f"{place.team.name}" if place.team is not None else f"user {place.user.pk} (personal)"
    when = f"{terms.period} from {terms.window_start:%Y-%m-%d}"
    return f"VideoStudio · {who} · {when} · {key_id.hex[:8]}"[:200]


def _claim(place: Place, terms: Terms, *, now: datetime) -> ProviderKey | None:
    key_id = uuid.uuid4()
    try:
        with transaction.atomic():
            return ProviderKey.objects.create(
                id=key_id,
                place=place.scope,
                team=place.team,
                user=place.user,
                name=_key_name(place, terms, key_id),
                budget_limit=terms.limit,
                budget_period=terms.period,
                window_start=terms.window_start,
                window_end=terms.window_end,
                expires_at=terms.window_end + EXPIRY_GRACE,
                claim=uuid.uuid4(),
                minting_since=now,
            )
    except IntegrityError:
        return None  # another caller holds this place's window


def _take_over(key: ProviderKey, *, now: datetime) -> ProviderKey | None:
    fresh = uuid.uuid4()
    taken = ProviderKey.objects.filter(
        pk=key.pk, claim=key.claim, status=ProviderKey.Status.MINTING, retired_at__isnull=True
    ).update(claim=fresh, minting_since=now)
    if not taken:
        return None
    logger.warning("provider key %s: its minter went quiet; minting it here", key.pk)
    key.claim, key.minting_since = fresh, now
    return key


def _spend_limit(place: Place, terms: Terms) -> Decimal | None:
    """The budget less what the place has already been charged in the window: the most the
    studio could still let through, so that this key and any before it in the window together
    never allow more than the budget. Possible costs still to check are left out (if the
    provider did not charge them, the studio will let that much through again)."""
    if terms.limit is None:
        return None
    spent = selectors.place_settled_cost(
        place=place.scope,
        first_day=terms.window_start.date(),
        last_day=(terms.window_end - timedelta(days=1)).date(),
    )
    return max(Decimal(0), Decimal(terms.limit) - spent).quantize(Decimal("0.0001"))


def _mint(key: ProviderKey, place: Place, terms: Terms) -> tuple[ProviderKey, str] | None:
    """Mint the claimed key at the provider and save it, if the claim is still ours.

    1. Work out its cap (_spend_limit) and ask the provider for the key, holding no
       transaction and no lock. On failure, give the claim up (delete the MINTING row, if
       still ours) so the next caller tries again.
    2. In one transaction: save the encrypted secret with a conditional UPDATE naming our
       claim, and record the mint in the audit trail.
    3. If the claim was taken over or the key retired meanwhile, the provider's key exists
       but will never be used: record it as a retired row (and in the audit trail) and return
       None, so the caller looks again.
    """
    spend_limit = _spend_limit(place, terms)
    period = terms.period if spend_limit is not None else ""
    client = imagerouter.ImageRouterClient.from_settings(
        api_key=settings.IMAGEROUTER_MANAGEMENT_KEY
    )
    try:
        minted = client.mint_key(
            name=key.name, spend_limit=spend_limit, period=period or None, expires_at=key.expires_at
        )
    except imagerouter.ImageRouterError as exc:
        ProviderKey.objects.filter(
            pk=key.pk, claim=key.claim, status=ProviderKey.Status.MINTING
        ).delete()
        logger.warning("provider key for %s: mint failed: %s", place.scope, exc.message)
        raise _unavailable(place, exc) from None

    now = timezone.now()
    with transaction.atomic():
        saved = ProviderKey.objects.filter(
            pk=key.pk,
            claim=key.claim,
            status=ProviderKey.Status.MINTING,
            retired_at__isnull=True,
        ).update(
            status=ProviderKey.Status.ACTIVE,
            provider_id=minted.provider_id,
            secret_encrypted=encryption.encrypt(minted.secret),
            spend_limit=spend_limit,
            period=period,
            minted_at=now,
        )
        if saved:
            key.refresh_from_db()
            _audit_minted(key, place)
        else:
            lost = ProviderKey.objects.create(
                place=key.place,
                team=key.team,
                user=key.user,
                name=minted.name,
                status=ProviderKey.Status.ACTIVE,
                provider_id=minted.provider_id,
                spend_limit=spend_limit,
                period=period,
                budget_limit=key.budget_limit,
                budget_period=key.budget_period,
                window_start=key.window_start,
                window_end=key.window_end,
                expires_at=key.expires_at,
                minted_at=now,
                retired_at=now,
                retired_because="minted by a worker that had lost its claim; never used",
            )
            _audit_minted(lost, place)
    if not saved:
        logger.warning("provider key %s: claim lost while minting; key left unused", key.pk)
        return None
    logger.info("provider key %s minted for %s (%s)", key.pk, place.scope, key.limit_words)
    return key, minted.secret


def _unavailable(place: Place, exc: imagerouter.ImageRouterError) -> ProviderKeyUnavailableError:
    if isinstance(exc, imagerouter.RefusedError):
        return ProviderKeyUnavailableError(
            f"ImageRouter refused to make a key for {place.label}, so nothing was generated or "
            f"charged: {exc.message} An admin must check the studio's IMAGEROUTER_MANAGEMENT_KEY.",
            retry=False,
        )
    # Not processed, or no answer: no key the studio knows of exists; try again later. (A key
    # made without an answer is never used, and expires at the provider by itself.)
    return ProviderKeyUnavailableError(
        f"Could not get an ImageRouter key for {place.label} just now ({exc.message}); this "
        "video will be tried again shortly. Nothing was charged.",
        retry=True,
        retry_after=getattr(exc, "retry_after", None),
    )


def _audit_minted(key: ProviderKey, place: Place) -> None:
    """The audit trail's record of a mint: by the studio (no actor), never with the secret."""
    where = (
        f"the {audit_quote(key.team.label)}" if key.team is not None else "{user}'s personal space"
    )
    audit_record(
        action=AuditEvent.Action.PROVIDER_KEY_MINTED,
        team=key.team,
        user=key.user,
        summary=(
            f"Provider key minted for {where}: {key.limit_words}, expires "
            f"{key.expires_at:%Y-%m-%d %H:%M} UTC"
        ),
        after={
            "name": key.name,
            "limit": None if key.spend_limit is None else str(key.spend_limit),
            "period": key.period or None,
            "expires_at": key.expires_at.isoformat(),
        },
    )


# The renewal pass (beat, every minute) -----------------------------------------------------------


def provider_keys_renew(*, now: datetime | None = None) -> dict[str, int]:
    """Keep each place's key ahead of its expiry and in step with its budget. Nothing to do
    without a management key. Safe to run twice at once: claims and retirements are
    conditional, so each key is minted once.

    1. Retire keys whose window has ended: a job never chooses them again, and they expire at
       the provider EXPIRY_GRACE later. A claim abandoned in a window that has ended is removed
       (a minter that finishes after all records its key as retired, never used).
    2. A live key whose place's budget changed is retired; if it was used in its window, its
       replacement is minted now (otherwise the next job mints one).
    3. A live key used in its window, whose window ends within RENEW_AHEAD, gets the next
       window's key now, before it expires, so the first job of the next period finds it ready.
       A key nobody used is left to expire: the next job mints one.
    """
    counts = {"retired": 0, "replaced": 0, "renewed": 0, "failed": 0}
    if not enabled():
        return counts
    now = now or timezone.now()
    counts["retired"] = ProviderKey.objects.filter(
        retired_at__isnull=True, status=ProviderKey.Status.ACTIVE, window_end__lte=now
    ).update(retired_at=now, retired_because="its period ended")
    ProviderKey.objects.filter(
        status=ProviderKey.Status.MINTING, window_end__lte=now, minting_since__lt=now - MINT_STALE
    ).delete()
    live = (
        ProviderKey.objects.filter(
            retired_at__isnull=True,
            status=ProviderKey.Status.ACTIVE,
            window_start__lte=now,
            window_end__gt=now,
        )
        .select_related("team", "user")
        .order_by("window_end")
    )
    for key in live[:RENEW_BATCH]:
        place = place_of_key(key)
        if place is None:
            continue
        used = key.last_used_at is not None and key.last_used_at >= key.window_start
        try:
            terms = terms_for(place, at=now)
            if not follows(key, terms):
                if provider_key_retire(key=key, because="its budget changed") and used:
                    counts["replaced"] += _renew(place, terms, now=now)
            elif used and key.window_end - now <= RENEW_AHEAD:
                counts["renewed"] += _renew(place, terms_for(place, at=key.window_end), now=now)
        except ProviderKeyUnavailableError as exc:
            counts["failed"] += 1
            logger.warning("provider keys: renewal for %s failed: %s", place.scope, exc.message)
            if exc.retry:
                break  # the provider is away or limiting us: try the rest next minute
    if any(counts.values()):
        logger.info("provider keys: %s", counts)
    return counts


def _renew(place: Place, terms: Terms, *, now: datetime) -> int:
    """Mint the key for `terms`' window unless the place already has one (or a mint of one is
    under way): 1 if this call minted it."""
    claimed = _claim(place, terms, now=now)
    if claimed is None:
        return 0
    return 1 if _mint(claimed, place, terms) is not None else 0


# A refusal on a place's key -------------------------------------------------------------------


@dataclass(frozen=True)
class CapVerdict:
    """A refusal explained by the key's cap: the provider's figures for the key and the
    studio's ledger on it, and whether the studio agrees the cap was reached."""

    key: ProviderKey
    place: Place
    spend_limit: Decimal
    period_spend: Decimal
    studio_spend: Decimal

    @property
    def studio_agrees(self) -> bool:
        return self.studio_spend >= self.spend_limit

    @property
    def message(self) -> str:
        """For the job's owner, in plain words."""
        cap = f"${self.spend_limit:.2f} {_period_words(self.key.period)}"
        if self.studio_agrees:
            return (
                f"ImageRouter refused this video: {self.place.label} has used its budget for "
                f"this period, and ImageRouter's own cap on its key ({cap}) now blocks every "
                "request made with it until it resets, free ones too. Nothing was charged."
            )
        return (
            f"ImageRouter refused this video because the spending cap on {self.place.label}'s "
            f"provider key ({cap}) has been reached, although the studio's own budget allowed "
            "it. Nothing was charged. Staff have been told: the studio's accounting and "
            "ImageRouter's disagree."
        )

    @property
    def notice_message(self) -> str:
        return (
            f"ImageRouter refused a generation for {self.place.label}: its key “{self.key.name}” "
            f"has spent ${self.period_spend:.4f} of its ${self.spend_limit:.4f} cap "
            f"({_period_words(self.key.period)}), but the studio's ledger counts "
            f"${self.studio_spend:.4f} on it. The studio's accounting and the provider's "
            "disagree: compare them on the reconciliation page, per provider key."
        )


def _period_words(period: str | None) -> str:
    return {"day": "a day", "week": "a week", "month": "a month"}.get(period, "in all")


def cap_verdict(*, key: ProviderKey, refusal: imagerouter.RefusedError) -> CapVerdict | None:
    """Was this refusal the key's cap? The provider does not document how it answers a key that
    has reached its limit, so the studio asks its credits report instead: the cap refused the
    call if the key's `period_spend` has reached its `spend_limit` (as the provider has it: an
    operator may have edited it in the dashboard). None: the refusal was something else.

    When the report cannot be read, a refusal whose words speak of a spend limit counts as the
    cap, with the studio's own figures standing in for the provider's."""
    place = place_of_key(key)
    if place is None:
        return None
    row = None
    try:
        report = imagerouter.get_client().credits(by_api_key=True)
        row = next(
            (r for r in report.get("usage_by_api_key") or [] if r.get("api_key_id") == key.provider_id),
            None,
        )  # fmt: skip
    except imagerouter.ImageRouterError as exc:
        logger.warning("provider key %s: credits unreadable after a refusal: %s", key.pk, exc)
    if row is not None:
        limit, spent, since = row.get("spend_limit"), row.get("period_spend"), row["period_start"]
        if limit is None or spent is None or spent < limit:
            return None
    else:
        words = f"{refusal.message} {refusal.error_type}".lower()
        if key.spend_limit is None or not ("spend limit" in words or "spend_limit" in words):
            return None
        limit, spent, since = key.spend_limit, None, key.window_start if key.period else None
    ledger = selectors.ledger_on_provider_key(key=key, since=since)
    studio = ledger["total"] + ledger["pending"]
    return CapVerdict(
        key=key,
        place=place,
        spend_limit=Decimal(limit),
        period_spend=Decimal(spent) if spent is not None else studio,
        studio_spend=studio,
    )
