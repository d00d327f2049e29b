"""What the studio says about models, money, time and sizes, in words for people.

The generate form's model labels and the estimate beside it use these same words, so they
always agree; the job page's timer and usual wait use duration_words, as the form does."""

import math

from django.utils.html import format_html

from .models import Budget, VideoModel
from .selectors import BudgetStatus
from .templatetags.studio import usd

MEGABYTE = 1024 * 1024

NO_WAIT_HISTORY = (
    "No videos from this model here yet; video models usually take from 20 seconds to a few "
    "minutes."
)


def price_words(model: VideoModel) -> str:
    """What a video on `model` costs, as the catalog says: "free", "$0.60", "about $0.30, at
    most $0.50", or "price set after generation, usually $0.40 to $1.20" (with an en dash)."""
    if model.is_free:
        return "free"
    if model.pricing == VideoModel.Pricing.POST_GENERATION:
        return f"price set after generation, usually {_usd_range(model.price_min, model.price_max)}"
    if model.price_min == model.price_max:
        return usd(model.price_max)
    return f"about {usd(model.price_average)}, at most {usd(model.price_max)}"


def model_label(model: VideoModel) -> str:
    """The model select's option: name, price and, for image-to-video, a tag."""
    tag = " · image → video" if model.accepts_image else ""
    return f"{model.name} · {price_words(model)}{tag}"


def budget_words(status: BudgetStatus) -> str:
    """What is left of one budget in its period and when it resets: "You have $4.50 left this
    month, resets in 3 days, on 1 Jan." for the personal budget, "Design team: $4.20 left this
    week, resets in ..." for the others (named as budget_label names them)."""
    if status.limit is None:
        return "No monthly limit." if _is_personal(status) else f"{status.label}: no limit."
    left = usd(status.left_or_zero)
    if _is_personal(status):
        return f"You have {left} left {status.period_words}, {status.resets}."
    return f"{status.label}: {left} left {status.period_words}, {status.resets}."


def over_budget_words(model: VideoModel, status: BudgetStatus) -> str:
    """A warning when the model's top price is more than what is left at this level: the submit
    would be refused (budgets.budget_reserve holds the top price). Empty when it fits."""
    if status.limit is None or model.price_max <= status.left:
        return ""
    if _is_personal(status):
        return (
            f"This model can cost up to {usd(model.price_max)}, more than you have left, so "
            "Generate would be refused. Choose a cheaper model, or ask an admin to raise your "
            "budget."
        )
    level = status.budget.level
    if level == Budget.Level.ORGANIZATION:
        advice = "or ask an admin to raise the organization's budget"
    elif level == Budget.Level.TOKEN:
        advice = "or raise the token's budget on the API tokens page"
    else:
        advice = "charge the video elsewhere, or ask one of the team's managers to raise it"
    return (
        f"This model can cost up to {usd(model.price_max)}, more than {in_sentence(status.label)} "
        f"has left {status.period_words}, so Generate would be refused. Choose a cheaper model, "
        f"{advice}."
    )


def first_over_budget_words(model: VideoModel, statuses) -> str:
    """The warning for the first level (in lock order, as the submit checks them) that the
    model's top price does not fit; empty when it fits them all."""
    return next(filter(None, (over_budget_words(model, status) for status in statuses)), "")


def budget_warning_words(status: BudgetStatus) -> str:
    """The banner over every page once a budget of the person's is 80% used: "You have used 83%
    of this month's budget ($0.50 of $0.60, counting jobs still running); it resets in 3 days,
    on 1 Jan." For a team's budget: "The Design team has used 90% of its budget this week ...".
    Safe HTML (format_html escapes the team's name), so the apostrophe stays as it is."""
    figures = format_html(
        "({} of {}, counting jobs still running); it {}.",
        usd(status.used),
        usd(status.limit),
        status.resets,
    )
    level = Budget.Level.PERSONAL if status.budget is None else status.budget.level
    percent = status.percent_used
    if level == Budget.Level.PERSONAL:
        return format_html(
            "You have used {}% of {}'s budget {}", percent, status.period_words, figures
        )
    if level == Budget.Level.MEMBER:
        return format_html(
            "You have used {}% of {} {} {}",
            percent,
            in_sentence(status.label),
            status.period_words,
            figures,
        )
    return format_html(
        "The {} has used {}% of its budget {} {}",
        status.label,
        percent,
        status.period_words,
        figures,
    )


def in_sentence(label: str) -> str:
    """A budget's label inside a sentence: "your budget in the Design team", "the organization",
    "Design team" (a team's own name keeps its capital)."""
    if label.startswith(("Your ", "The ")):
        return label[0].lower() + label[1:]
    return label


def _is_personal(status: BudgetStatus) -> bool:
    return status.budget is None or status.budget.level == Budget.Level.PERSONAL


def wait_words(median_seconds: float | None, sample: int) -> str:
    """How long a video on this model usually takes here, or the honest general answer."""
    if median_seconds is None or sample < 1:
        return NO_WAIT_HISTORY
    basis = "the only one made here so far" if sample == 1 else f"median of the last {sample} here"
    return f"Usually ready in about {duration_words(median_seconds)} ({basis})."


def duration_words(seconds: float) -> str:
    """70 → "1 min 10 s", 45 → "45 s", 120 → "2 min", 3900 → "1 h 5 min". An estimate, so never
    less than "1 s"."""
    return _whole_seconds_words(max(1, round(seconds)))


def elapsed_words(seconds: int) -> str:
    """A timer's reading, in the same words, from "0 s": the job page's "Generating… 1 min 10 s
    so far"."""
    return _whole_seconds_words(max(0, seconds))


def _whole_seconds_words(total: int) -> str:
    if total < 60:
        return f"{total} s"
    minutes, rest = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _usd_range(low, high) -> str:
    return usd(high) if low == high else f"{usd(low)}–{usd(high)}"


def one_of(values) -> str:
    """[4, 8, 12] → "4, 8 or 12"."""
    words = [str(value) for value in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def file_size(size: int, *, round_up: bool = False) -> str:
    """Bytes for people: "10 MB", "1.5 MB", "300 KB". A size over a limit rounds up and the limit
    rounds down, so a file a byte too big never reads as the same size as the limit."""
    unit, name = (MEGABYTE, "MB") if size >= MEGABYTE else (1024, "KB")
    rounding = math.ceil if round_up else math.floor
    value = rounding(size * 10 / unit) / 10
    return f"{value:g} {name}"


def pixel_count(pixels: int) -> str:
    """40_000_000 → "40 megapixels", rounded down, as a limit should be."""
    if pixels < 1_000_000:
        return f"{pixels:,} pixels"
    return f"{math.floor(pixels / 100_000) / 10:g} megapixels"
