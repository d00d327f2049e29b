"""The forms of a comparison (one prompt on 2 to 6 models, each with its own seconds and size)
and of variations (2 to 8 runs of one model with the same settings). Both list every model the
person may use where the group is charged, one row each, so they work without JavaScript; htmx
only refreshes the estimates and the total as rows are ticked (views.groups.group_facts)."""

import re
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.urls import reverse

from .forms import (
    PROMPT_MAX_CHARS,
    SIZE_PATTERN,
    SIZE_SIDE_MAX,
    SIZE_SIDE_MIN,
    ChargePlaces,
    charge_to_field,
    response_format_field,
    seconds_choices,
    size_choices,
)
from .image_checks import checked_image
from .models import Job, JobGroup, Team, VideoModel
from .services.groups import JobSpec
from .wording import one_of, price_words

COMPARE_MIN, COMPARE_MAX = JobGroup.SIZES[JobGroup.Kind.COMPARISON]
RUNS_MIN, RUNS_MAX = JobGroup.SIZES[JobGroup.Kind.VARIATIONS]
GROUP_URLS = {JobGroup.Kind.COMPARISON: "jobs:compare", JobGroup.Kind.VARIATIONS: "jobs:variations"}


def model_slug(model_id: str) -> str:
    """A field-name-safe form of a model id: google/veo-3.1-fast → google-veo-3-1-fast."""
    return re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")


@dataclass
class ModelRow:
    """One model's row: whether it is chosen, its own seconds and size, and its estimate."""

    model: VideoModel
    slug: str
    chosen: bool
    seconds: forms.BoundField
    size: forms.BoundField

    @property
    def price(self) -> str:
        return price_words(self.model)


class GroupForm(forms.Form):
    """A comparison (kind=comparison: tick 2 to 6 models) or variations (kind=variations: one
    model, 2 to 8 runs). `specs` (after is_valid) are the jobs to make, in the order shown."""

    prompt = forms.CharField(
        label="Prompt",
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "maxlength": PROMPT_MAX_CHARS,
                "placeholder": "A red fox running through snow",
            }
        ),
    )
    image = forms.FileField(
        label="Image",
        required=False,
        help_text="Optional, for image-to-video: PNG, JPEG or WebP. Every chosen model must "
        "take an input image.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    response_format = response_format_field()

    def __init__(self, *args, kind: str, models=(), places: ChargePlaces | None = None, **kw):
        super().__init__(*args, **kw)
        self.kind = kind
        self.places = places
        self.team: Team | None = None
        posted_place = self.is_bound and "charge_to" in self.data
        if places is not None and (places.offered or posted_place):
            self.fields = {"charge_to": charge_to_field(places), **self.fields}
            # Changing the place reloads the rows (the models allowed there) with htmx.
            self.fields["charge_to"].widget.attrs.update(
                {
                    "hx-get": reverse(GROUP_URLS[kind]),
                    "hx-include": "select[name=charge_to]",
                    "hx-vals": "{}",
                    "hx-target": "#group-choices",
                    "hx-select": "#group-choices",
                    "hx-swap": "outerHTML",
                }
            )
            value = self.data.get("charge_to") if self.is_bound else self.initial.get("charge_to")
            self.team = places.team_or_default(value or places.initial)
            if not self.is_bound and self.initial.get("charge_to") is None:
                self.initial["charge_to"] = places.initial
        self.catalog = {model.id: model for model in models}
        self.slugs = {model.id: model_slug(model.id) for model in models}
        choices = [(model.id, model.name) for model in models]
        if kind == JobGroup.Kind.COMPARISON:
            self.fields["models"] = forms.MultipleChoiceField(
                label="Models",
                choices=choices,
                required=False,
                error_messages={
                    "invalid_choice": "“%(value)s” is not a model you can choose here. "
                    "Reload the page to see the models you can."
                },
            )
        else:
            self.fields["model"] = forms.ChoiceField(
                label="Model",
                choices=choices,
                required=False,
                error_messages={
                    "invalid_choice": "“%(value)s” is not a model you can choose here. "
                    "Reload the page to see the models you can."
                },
            )
            self.fields["runs"] = forms.IntegerField(
                label="Runs",
                min_value=RUNS_MIN,
                max_value=RUNS_MAX,
                initial=4,
                help_text=f"How many videos to make, {RUNS_MIN} to {RUNS_MAX}, all with the "
                "same settings.",
                error_messages={
                    "required": f"Enter how many runs to make, from {RUNS_MIN} to {RUNS_MAX}.",
                    "invalid": f"Enter a whole number of runs from {RUNS_MIN} to {RUNS_MAX}.",
                    "min_value": f"Make at least {RUNS_MIN} runs; for one video, use Generate.",
                    "max_value": f"Variations make at most {RUNS_MAX} runs.",
                },
            )
        for model in models:
            slug = self.slugs[model.id]
            seconds, default = seconds_choices(model)
            self.fields[f"seconds__{slug}"] = forms.CharField(
                label=f"Seconds for {model.name}",
                required=False,
                initial=default,
                widget=forms.Select(choices=seconds),
            )
            if model.sizes:
                widget = forms.Select(choices=size_choices(model))
            else:
                widget = forms.TextInput(attrs={"placeholder": "1280x720", "maxlength": 20})
            self.fields[f"size__{slug}"] = forms.CharField(
                label=f"Size for {model.name}", required=False, initial="auto", widget=widget
            )
        self.specs: list[JobSpec] = []

    @property
    def is_comparison(self) -> bool:
        return self.kind == JobGroup.Kind.COMPARISON

    @property
    def pick(self) -> forms.BoundField:
        """The models' field (comparison) or the model's (variations): where its errors show."""
        return self["models" if self.is_comparison else "model"]

    def chosen_ids(self) -> list[str]:
        """The models ticked (comparison) or chosen (variations), as posted or initially."""
        if self.is_bound:
            if self.is_comparison:
                return [m for m in self.data.getlist("models") if m in self.catalog]
            model = self.data.get("model")
            return [model] if model in self.catalog else []
        if self.is_comparison:
            return [m for m in self.initial.get("models", []) if m in self.catalog]
        model = self.initial.get("model")
        return [model] if model in self.catalog else []

    def rows(self) -> list[ModelRow]:
        chosen = set(self.chosen_ids())
        return [
            ModelRow(
                model=model,
                slug=self.slugs[model.id],
                chosen=model.id in chosen,
                seconds=self[f"seconds__{self.slugs[model.id]}"],
                size=self[f"size__{self.slugs[model.id]}"],
            )
            for model in self.catalog.values()
        ]

    def clean_charge_to(self) -> Team | None:
        return self.places.team_for(self.cleaned_data["charge_to"])

    def clean_prompt(self) -> str:
        prompt = self.cleaned_data["prompt"].replace("\r\n", "\n").strip()
        if len(prompt) > PROMPT_MAX_CHARS:
            raise forms.ValidationError(
                f"This prompt is {len(prompt):,} characters long; the most ImageRouter takes is "
                f"{PROMPT_MAX_CHARS:,}. Shorten it and try again."
            )
        return prompt

    def clean_image(self):
        image = self.cleaned_data.get("image")
        return checked_image(image) if image else None

    def clean(self):
        cleaned = super().clean()
        if self.is_comparison:
            ids = list(dict.fromkeys(cleaned.get("models") or []))
            if not COMPARE_MIN <= len(ids) <= COMPARE_MAX and not self.has_error("models"):
                self.add_error(
                    "models",
                    f"Choose {COMPARE_MIN} to {COMPARE_MAX} models to compare; you chose "
                    f"{len(ids)}.",
                )
                return cleaned
            runs = 1
        else:
            ids = [cleaned["model"]] if cleaned.get("model") else []
            if not ids and not self.has_error("model"):
                self.add_error("model", "Choose the model to run.")
            runs = cleaned.get("runs") or 0
        if not ids or not runs:
            return cleaned
        models = [self.catalog[model_id] for model_id in ids]
        image = cleaned.get("image")
        no_image = [m.id for m in models if not m.accepts_image]
        if image and no_image:
            self.add_error(
                "image",
                f"{' and '.join(no_image)} {'does' if len(no_image) == 1 else 'do'} not take an input "
                "image. Remove the image, or untick the models that do not take one.",
            )
        if not cleaned.get("prompt") and "prompt" not in self.errors and (not image or no_image):
            self.add_error("prompt", "Describe the video you want: these models need a prompt.")
        specs = []
        for model in models:
            seconds = self._seconds_for(model)
            size = self._size_for(model)
            if seconds is None or size is None:
                continue
            specs.append(
                JobSpec(
                    prompt=cleaned.get("prompt", ""),
                    model=model.id,
                    size=size,
                    seconds=seconds,
                    response_format=cleaned.get("response_format") or Job.ResponseFormat.URL,
                )
            )
        self.specs = specs * runs
        return cleaned

    def _seconds_for(self, model: VideoModel) -> str | None:
        name = f"seconds__{self.slugs[model.id]}"
        # Not posted (a script, an old page): the model's own default, as the select shows.
        value = (self.cleaned_data.get(name) or self.fields[name].initial).strip().lower()
        allowed = {value for value, _ in seconds_choices(model)[0]}
        if value not in allowed:
            self.add_error(
                name,
                f"{model.id} makes videos of {one_of(model.seconds)} seconds. Choose one of those.",
            )
            return None
        return value

    def _size_for(self, model: VideoModel) -> str | None:
        name = f"size__{self.slugs[model.id]}"
        value = (self.cleaned_data.get(name) or "auto").strip().lower()
        if value == "auto":
            return value
        match = SIZE_PATTERN.match(value)
        if not match:
            self.add_error(name, "Enter auto, or a size such as 1280x720.")
            return None
        size = f"{int(match[1])}x{int(match[2])}"
        if model.sizes and size not in model.sizes:
            self.add_error(
                name,
                f"{model.id} makes these sizes: {one_of(model.sizes)}. Choose one of those, "
                "or auto.",
            )
            return None
        if not model.sizes and not all(
            SIZE_SIDE_MIN <= int(side) <= SIZE_SIDE_MAX for side in match.groups()
        ):
            self.add_error(
                name,
                f"Width and height must each be from {SIZE_SIDE_MIN} to {SIZE_SIDE_MAX:,} "
                f"pixels; {size} is not. Enter another size, or auto.",
            )
            return None
        return size


def worst_case(models: list[VideoModel], runs: int = 1) -> Decimal:
    return sum((m.price_max for m in models), Decimal(0)) * runs
