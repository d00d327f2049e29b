"""The batch form: up to 100 prompts pasted one a line, or a CSV file (prompt, and optionally
model, seconds, size), for one model or per row; and the preview of the batch, which says what
each row would make and cost, or why it would be refused, before anything is created.

Kept apart from forms.py (the generate form); the checks a row goes through are the generate
form's (prompt length, the model offered where the batch is charged, its seconds and sizes) and
the submit's (services.limits, the budget levels), read here without holding or counting
anything: services.batches.batch_create_once checks everything again when the batch starts.
"""

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal

from django import forms

from . import selectors
from .forms import (
    PROMPT_MAX_CHARS,
    SIZE_PATTERN,
    SIZE_SIDE_MAX,
    SIZE_SIDE_MIN,
    ChargePlaces,
    response_format_field,
)
from .models import JobGroup, Team, VideoModel
from .numbers import parse_whole_number
from .wording import file_size, model_label, one_of, usd

MAX_ROWS = JobGroup.SIZES[JobGroup.Kind.BATCH][1]
# 100 rows of the longest prompt (10,000 characters), even in a script of 4 bytes a character.
BATCH_FILE_MAX_BYTES = 4 * 1024 * 1024
COLUMNS = ("prompt", "model", "seconds", "size")
AUTO = "auto"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class BatchInputError(ValueError):
    """The prompts or the file cannot be read as a batch; the message says why and what to do."""


@dataclass(frozen=True)
class BatchRow:
    """One prompt as the person gave it: `number` is its line (pasted) or its data row (a CSV
    file, the header not counted), as they would count it; empty fields take the form's."""

    number: int
    prompt: str
    model: str = ""
    seconds: str = ""
    size: str = ""


# --- Reading the input --------------------------------------------------------------------------


def rows_from_text(text: str) -> list[BatchRow]:
    """One prompt a line; blank lines are skipped, and each row keeps its line's number."""
    rows = [
        BatchRow(number=number, prompt=line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    return _counted(rows, "pasted")


def rows_from_csv(upload) -> list[BatchRow]:
    """The rows of an uploaded CSV file: UTF-8 (with or without a byte order mark) or UTF-16 with
    one, separated by commas, semicolons or tabs. A first row naming the columns (prompt, model,
    seconds, size, in any order) is a header; without one the columns are in that order and only
    the prompt is needed. Blank rows are skipped. Raises BatchInputError for anything that is not
    such a file."""
    raw = upload.read(BATCH_FILE_MAX_BYTES + 1)
    if len(raw) > BATCH_FILE_MAX_BYTES:
        raise BatchInputError(
            f"This file is larger than {file_size(BATCH_FILE_MAX_BYTES)}, the most a batch file "
            f"may be (100 prompts of up to {PROMPT_MAX_CHARS:,} characters each fit). Choose a "
            "smaller file."
        )
    if "\0" in _decoded(raw) if raw.startswith(UTF16_BOMS) else b"\0" in raw:
        raise BatchInputError(
            "This file is not a CSV file: it holds binary data. Save your spreadsheet as "
            "“CSV UTF-8” and choose that file."
        )
    text = _decoded(raw)
    if not text.strip():
        raise BatchInputError("This file is empty. Choose a CSV file with one prompt a row.")
    first_line = text.lstrip().splitlines()[0]
    delimiter = max(",;\t", key=first_line.count) if any(c in first_line for c in ",;\t") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        records = [(reader.line_num, record) for record in reader]
    except csv.Error as exc:
        raise BatchInputError(
            f"Line {reader.line_num} of this file cannot be read as CSV ({exc}). Check its quotes: "
            "a prompt holding a comma, a quote or a line break must be in double quotes, with "
            "any quote inside it doubled."
        ) from None
    records = [(line, record) for line, record in records if any(cell.strip() for cell in record)]
    if not records:
        raise BatchInputError("This file has no prompts. Put one prompt in each row.")
    columns = _header(records[0][1])
    if columns is not None:
        records = records[1:]
        if not records:
            raise BatchInputError(
                "This file has only its header row. Put one prompt in each row below it."
            )
    else:
        columns = COLUMNS
    rows = []
    for number, (line, record) in enumerate(records, start=1):
        if len(record) > len(columns):
            raise BatchInputError(
                f"Line {line} of this file has {len(record)} cells, more than its "
                f"{len(columns)} column{'s' if len(columns) > 1 else ''} "
                f"({', '.join(columns)}). A prompt holding a comma must be in double quotes."
            )
        cells = dict(zip(columns, (cell.strip() for cell in record), strict=False))
        rows.append(BatchRow(number=number, **cells))
    return _counted(rows, "file")


def _decoded(raw: bytes) -> str:
    """The file's text. Excel saves "CSV UTF-8" with a byte order mark and "Unicode text" as
    UTF-16 with one; anything else must be UTF-8."""
    encoding = "utf-16" if raw.startswith(UTF16_BOMS) else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BatchInputError(
            f"This file is not UTF-8 text (byte {exc.start + 1:,} cannot be read). Save it as "
            "“CSV UTF-8” (in Excel or LibreOffice: Save as, then that file type) and choose it "
            "again."
        ) from None


def _header(record: list[str]) -> tuple[str, ...] | None:
    """The columns a first row names, or None when it is a prompt (not a header). A first row
    whose cells are all column names is a header; one naming some columns and other words is an
    error, as is a header with no prompt column or a column twice."""
    names = [cell.strip().lower() for cell in record]
    known = [name for name in names if name in COLUMNS]
    if not known:
        return None
    unknown = [cell.strip() for cell in record if cell.strip().lower() not in COLUMNS]
    if unknown:
        raise BatchInputError(
            f"The first row names the columns, but “{unknown[0]}” is not one of them: they are "
            f"{one_of(COLUMNS)}. Rename or remove that column."
        )
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice:
        raise BatchInputError(f"The first row names the column “{twice}” twice. Keep one.")
    if "prompt" not in names:
        raise BatchInputError(
            "The first row names the columns, but none is “prompt”. Add a prompt column."
        )
    return tuple(names)


def _counted(rows: list[BatchRow], source: str) -> list[BatchRow]:
    if not rows:
        raise BatchInputError("Paste at least one prompt, or choose a CSV file.")
    if len(rows) > MAX_ROWS:
        where = "You pasted" if source == "pasted" else "This file has"
        raise BatchInputError(
            f"{where} {len(rows)} prompts; a batch takes at most {MAX_ROWS}. Split them into "
            f"batches of {MAX_ROWS} or fewer."
        )
    return rows


# --- The form ------------------------------------------------------------------------------------


class BatchForm(forms.Form):
    """Where the batch is charged, the model (and its seconds and size) for the rows that name
    none, the response format for every row, and the prompts: pasted, or a CSV file."""

    model = forms.ChoiceField(
        label="Model",
        help_text="For every prompt, or for the rows of a file that name no model.",
        error_messages={
            "required": "Choose a model from the list.",
            "invalid_choice": "“%(value)s” is not a model you can choose here. Choose one from "
            "the list.",
        },
    )
    seconds = forms.CharField(
        label="Seconds",
        initial=AUTO,
        max_length=10,
        help_text="auto, or a length the model makes; a file's seconds column wins.",
        error_messages={"required": "Enter auto, or a whole number of seconds from 1 to 60."},
    )
    size = forms.CharField(
        label="Size",
        initial=AUTO,
        max_length=20,
        help_text="auto, or width x height such as 1280x720; a file's size column wins.",
        error_messages={"required": "Enter auto, or a size such as 1280x720."},
    )
    response_format = response_format_field()
    prompts = forms.CharField(
        label="Prompts, one a line",
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 8, "placeholder": "A red fox running through snow\nA heron on a pier"}
        ),
        help_text=f"Up to {MAX_ROWS}. Blank lines are skipped.",
    )
    csv_file = forms.FileField(
        label="Or a CSV file",
        required=False,
        help_text="Columns prompt, and optionally model, seconds and size (a first row naming "
        "them is optional). UTF-8, at most 100 rows.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"}),
        error_messages={
            "empty": "This file is empty. Choose a CSV file with one prompt a row.",
            "invalid": "No file was received. Choose the CSV file again.",
        },
    )

    def __init__(self, *args, models=(), places: ChargePlaces | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.places = places
        self.team: Team | None = None
        if places is not None and places.offered:
            self.fields = {"charge_to": _charge_to_field(places), **self.fields}
            posted = self.data.get("charge_to") if self.is_bound else None
            self.team = places.team_or_default(posted or places.initial)
        self.catalog = {model.id: model for model in models}
        self.fields["model"].choices = [(m.id, model_label(m)) for m in self.catalog.values()]
        if "ir/test-video" in self.catalog:
            self.fields["model"].initial = "ir/test-video"
        self.rows: list[BatchRow] = []  # set by clean()

    def clean_charge_to(self) -> Team | None:
        return self.places.team_for(self.cleaned_data["charge_to"])

    def clean(self):
        cleaned = super().clean()
        text, upload = cleaned.get("prompts") or "", cleaned.get("csv_file")
        if self.has_error("csv_file"):
            return cleaned
        if text.strip() and upload:
            raise forms.ValidationError(
                "Paste prompts or choose a CSV file, not both: empty the box or remove the file."
            )
        try:
            if upload:
                self.rows = rows_from_csv(upload)
            else:
                self.rows = rows_from_text(text)
        except BatchInputError as exc:
            self.add_error("csv_file" if upload else "prompts", str(exc))
        return cleaned

    def planned_rows(self) -> list[dict]:
        """Each row with the form's model, seconds and size where it names none."""
        data = self.cleaned_data
        return [
            {
                "number": row.number,
                "prompt": row.prompt,
                "model": row.model or data["model"],
                "seconds": row.seconds or data["seconds"],
                "size": row.size or data["size"],
            }
            for row in self.rows
        ]


def _charge_to_field(places: ChargePlaces) -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Charge to",
        choices=places.choices(),
        initial=places.initial,
        help_text="Where every video of the batch is charged. A team's videos are shared with "
        "its members.",
        error_messages={
            "required": "Choose where to charge this batch.",
            "invalid_choice": "You cannot charge videos there: you are not a member of that "
            "team. Choose one of the places listed.",
        },
    )


def planned_rows_from_json(raw: str) -> list[dict]:
    """The rows a preview carried to its Start button (a hidden field). Only their shape is
    checked here; batch_preview checks everything else again. BatchInputError when it is not
    a list of 1 to 100 such rows."""
    try:
        rows = json.loads(raw)
    except ValueError:
        rows = None
    keys = {"number", "prompt", "model", "seconds", "size"}
    if (
        not isinstance(rows, list)
        or not 1 <= len(rows) <= MAX_ROWS
        or not all(isinstance(row, dict) and set(row) == keys for row in rows)
        or not all(isinstance(row["number"], int) for row in rows)
        or not all(isinstance(row[key], str) for row in rows for key in keys - {"number"})
    ):
        raise BatchInputError("This batch could not be read. Preview it again, then start it.")
    return rows


# --- The preview ---------------------------------------------------------------------------------


@dataclass
class PlannedRow:
    number: int
    prompt: str
    model: str
    seconds: str
    size: str
    estimate: Decimal | None = None
    refusal: str = ""


@dataclass
class BatchPreview:
    rows: list[PlannedRow]
    # Refusals of the batch as a whole: a budget level short of the total, the place, the team's
    # storage, the active-jobs cap.
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((row.estimate or Decimal(0) for row in self.rows), Decimal(0))

    @property
    def refused(self) -> list[PlannedRow]:
        return [row for row in self.rows if row.refusal]

    @property
    def acceptable(self) -> bool:
        return not self.problems and not self.refused

    def as_json(self) -> str:
        keys = ("number", "prompt", "model", "seconds", "size")
        return json.dumps([{key: getattr(row, key) for key in keys} for row in self.rows])


def batch_preview(*, owner, team: Team | None, rows: list[dict]) -> BatchPreview:
    """What starting these rows, charged to `team` (None: personal), would do: each row's
    normalized seconds and size, its estimate (the model's top price) or why it would be
    refused, and what refuses the batch as a whole. Reads only: nothing is held or counted.

    1. Each row against the catalog offered where the batch is charged: a prompt (1 to 10,000
       characters), a model offered there, seconds and a size that model makes.
    2. Each remaining row's estimate against every budget level on its own, then the total
       against each level (with how many rows would fit), in lock order, as the submit does.
    3. The place, the team's storage and the active-jobs cap, by the submit's own checks.
    """
    from .services.budgets import OverBudgetError
    from .services.limits import (
        SubmitRefusedError,
        active_jobs_check,
        charge_check,
        storage_quota_check,
    )

    catalog = {model.id: model for model in selectors.catalog_models(user=owner, team=team)}
    planned = [_planned_row(row, catalog, owner=owner, team=team) for row in rows]
    preview = BatchPreview(rows=planned)
    statuses = selectors.budget_statuses_for_charge(user=owner, team=team)
    for row in planned:
        if row.refusal or row.estimate is None:
            continue
        short = next((s for s in statuses if row.estimate > s.left), None)
        if short is not None:
            row.refusal = str(OverBudgetError(estimate=row.estimate, left=short.left, status=short))
    total = preview.total
    for status in statuses:
        if total > status.left:
            message = str(
                OverBudgetError(estimate=total, left=status.left, status=status, count=len(rows))
            ).removesuffix(" Nothing was started.")
            fit = _rows_that_fit(planned, status.left)
            preview.problems.append(f"{message} The first {fit} of them would fit.")
    for check in (
        lambda: charge_check(user=owner, team=team),
        lambda: storage_quota_check(team=team),
        lambda: active_jobs_check(user=owner),
    ):
        try:
            check()
        except SubmitRefusedError as exc:
            preview.problems.append(str(exc))
    return preview


def _rows_that_fit(rows: list[PlannedRow], left: Decimal) -> int:
    spent = Decimal(0)
    for count, row in enumerate(rows):
        spent += row.estimate or 0
        if spent > left:
            return count
    return len(rows)


def _planned_row(row: dict, catalog: dict[str, VideoModel], *, owner, team) -> PlannedRow:
    planned = PlannedRow(
        number=row["number"],
        prompt=row["prompt"].replace("\r\n", "\n").strip(),
        model=row["model"].strip(),
        seconds=row["seconds"].strip().lower() or AUTO,
        size=row["size"].strip().lower() or AUTO,
    )
    model = catalog.get(planned.model)
    planned.refusal = _prompt_refusal(planned.prompt) or _model_refusal(
        planned.model, model, owner=owner, team=team
    )
    if model is None:
        return planned
    seconds_refusal, planned.seconds = _seconds_for(model, planned.seconds)
    size_refusal, planned.size = _size_for(model, planned.size)
    planned.refusal = planned.refusal or seconds_refusal or size_refusal
    planned.estimate = model.price_max or Decimal(0)
    return planned


def _prompt_refusal(prompt: str) -> str:
    if not prompt:
        return "This row has no prompt. Describe the video you want."
    if len(prompt) > PROMPT_MAX_CHARS:
        return (
            f"This prompt is {len(prompt):,} characters long; the most ImageRouter takes is "
            f"{PROMPT_MAX_CHARS:,}. Shorten it."
        )
    return ""


def _model_refusal(model_id: str, model: VideoModel | None, *, owner, team) -> str:
    from .services.limits import ModelUnavailableError

    if model is not None:
        return ""
    if not model_id:
        return "This row names no model. Choose one on the form, or fill its model column."
    if team is not None and selectors.catalog_models(user=owner).filter(pk=model_id).exists():
        return str(ModelUnavailableError(model=model_id, team=team))
    return f"“{model_id}” is not a model you can choose here. Use one from the form's list."


def _seconds_for(model: VideoModel, seconds: str) -> tuple[str, str]:
    """(a refusal or "", the seconds as they will be sent)."""
    if seconds == AUTO:
        return "", seconds
    number = parse_whole_number(seconds, minimum=1, maximum=60)
    if number is None:
        return "Seconds must be auto, or a whole number from 1 to 60.", seconds
    if model.seconds and number not in model.seconds:
        return (
            f"{model.id} makes videos of {one_of(model.seconds)} seconds, not {number}. "
            "Choose one of those, or auto.",
            str(number),
        )
    return "", str(number)


def _size_for(model: VideoModel, size: str) -> tuple[str, str]:
    """(a refusal or "", the size as it will be sent)."""
    if size == AUTO:
        return "", size
    match = SIZE_PATTERN.match(size)
    if not match:
        return "Size must be auto, or width x height such as 1280x720.", size
    width, height = int(match[1]), int(match[2])
    size = f"{width}x{height}"
    if model.sizes:
        if size not in model.sizes:
            return (
                f"{model.id} makes these sizes: {one_of(model.sizes)}, not {size}. Choose one "
                "of those, or auto.",
                size,
            )
        return "", size
    if not all(SIZE_SIDE_MIN <= side <= SIZE_SIDE_MAX for side in (width, height)):
        return (
            f"Width and height must each be from {SIZE_SIDE_MIN} to {SIZE_SIDE_MAX:,} pixels; "
            f"{size} is not.",
            size,
        )
    return "", size


def preview_words(preview: BatchPreview) -> str:
    """The line above the table: "12 prompts, up to $4.80 in all." """
    count = len(preview.rows)
    return f"{count} prompt{'s' if count != 1 else ''}, up to {usd(preview.total)} in all."
