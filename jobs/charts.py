"""Small charts drawn on the server as inline SVG: no JavaScript, no CDN, readable by a screen
reader (a <title> and <desc> named by aria-labelledby) and by a person hovering a bar (each bar
has its own <title>). Pages put a table of the same figures next to a chart, for anyone who
cannot see it.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from jobs.templatetags.studio import usd

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 28  # room for the axis labels
MAX_X_LABELS = 10
BAR_COLOUR = "#3b5bdb"
AXIS_COLOUR = "#5b6475"
GRID_COLOUR = "#dfe3ea"


@dataclass(frozen=True)
class Bar:
    label: str  # shown under the axis, e.g. "3"
    value: Decimal
    detail: str  # the bar's tooltip, e.g. "2026-11-03: $1.20 (4 jobs)"


def bar_chart(bars: list[Bar], *, title: str, chart_id: str) -> SafeString:
    """A bar chart of `bars`, left to right, scaled to the largest value.

    `chart_id` must be unique on the page: it names the <title> and <desc> for aria-labelledby.
    """
    highest = max((bar.value for bar in bars), default=Decimal(0))
    top = nice_ceiling(highest)
    total = sum((bar.value for bar in bars), Decimal(0))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(bars), 1)
    gap = min(slot * 0.2, 4)
    label_every = max(1, -(-len(bars) // MAX_X_LABELS))  # ceiling division

    rects = []
    for index, bar in enumerate(bars):
        height = float(bar.value / top) * plot_height if top else 0
        if bar.value > 0:
            height = max(height, 1)  # a tiny spend still shows
        rects.append(
            (
                f"{LEFT + index * slot + gap / 2:.1f}",
                f"{TOP + plot_height - height:.1f}",
                f"{max(slot - gap, 0.5):.1f}",
                f"{height:.1f}",
                bar.detail,
            )
        )
    x_labels = [
        (f"{LEFT + (index + 0.5) * slot:.1f}", bar.label)
        for index, bar in enumerate(bars)
        if index % label_every == 0
    ]
    shares = (Decimal(0), Decimal("0.5"), Decimal(1)) if top else ()
    gridlines = [
        (f"{TOP + plot_height * float(1 - share):.1f}", usd(top * share)) for share in shares
    ]

    description = (
        f"{len(bars)} bars, highest {usd(highest)}, total {usd(total)}."
        if top
        else "Nothing was spent in this period."
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        'aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg" '
        'font-family="system-ui, sans-serif" font-size="11">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{description}</desc>'
        "{grid}{rects}"
        '<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="{axis}"/>'
        "{x_labels}{empty}</svg>",
        width=WIDTH,
        height=HEIGHT,
        id=chart_id,
        title=title,
        description=description,
        grid=format_html_join(
            "",
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
            '<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle" fill="{}">{}</text>',
            (
                (LEFT, y, WIDTH - RIGHT, y, GRID_COLOUR, LEFT - 6, y, AXIS_COLOUR, amount)
                for y, amount in gridlines
            ),
        ),
        rects=format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            ((x, y, w, h, BAR_COLOUR, detail) for x, y, w, h, detail in rects),
        ),
        left=LEFT,
        right=WIDTH - RIGHT,
        base=TOP + plot_height,
        axis=AXIS_COLOUR,
        x_labels=format_html_join(
            "",
            '<text x="{}" y="{}" text-anchor="middle" fill="{}">{}</text>',
            ((x, HEIGHT - 10, AXIS_COLOUR, label) for x, label in x_labels),
        ),
        empty=format_html(
            '<text x="{}" y="{}" text-anchor="middle" fill="{}">Nothing spent</text>',
            LEFT + plot_width / 2,
            TOP + plot_height / 2,
            AXIS_COLOUR,
        )
        if not top
        else "",
    )


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `value`, so the
    axis reads $1.00 and $0.50 rather than $0.85 and $0.425."""
    if value <= 0:
        return Decimal(0)
    power = Decimal(10) ** (value.adjusted())
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def daily_bars(days: list[dict]) -> list[Bar]:
    """Bars for the rows of selectors.daily_spend: one per day, labelled by day of month, or by
    month and day when the days span more than one month."""
    one_month = len({(row["day"].year, row["day"].month) for row in days}) <= 1
    return [
        Bar(
            label=str(row["day"].day) if one_month else f"{row['day']:%m-%d}",
            value=row["total"],
            detail=f"{row['day']:%Y-%m-%d}: {usd(row['total'])} ({_jobs(row['count'])})",
        )
        for row in days
    ]


def _jobs(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"
