"""The generate form (JobForm), which follows the chosen model, and where a job may be charged.
Its words come from wording.py and its image checks from image_checks.py. The account forms
(sign-up, log-in, password reset, address change) are in account_forms.py."""

import re
import uuid
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.http import Http404
from django.urls import reverse_lazy

from . import selectors
from .image_checks import checked_image
from .models import Job, Team, VideoModel
from .numbers import parse_whole_number
from .wording import model_label, one_of

PROMPT_MAX_CHARS = 10_000
SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX×*]\s*(\d+)\s*$")
# A model that lists no sizes takes any W x H; these bounds keep a typo from reaching the API.
SIZE_SIDE_MIN, SIZE_SIDE_MAX = 64, 4096
# What the model select sends when it changes: the model itself (htmx adds the select), the
# fields that depend on the model, and the hidden ids of an earlier image. Not the prompt (it
# stays where it is and could be 10,000 characters long in a URL), not the file, not the token.
# Where the job is charged goes too: the facts (budgets) and the models allowed depend on it.
OPTIONS_INCLUDE = (
    "#model-options select, #model-options input:not([type=file]), select[name=charge_to]"
)
# What the Charge to select sends when it changes: the same, with the model, and a flag asking
# for the model list again (the place's own list of allowed models).
CHARGE_INCLUDE = f"select[name=model], {OPTIONS_INCLUDE}"
PERSONAL = "personal"  # the Charge to value of the user's personal space

RESPONSE_FORMAT_HELP = {
    Job.ResponseFormat.URL: "The provider stores the video at a link anyone who has it can open.",
    Job.ResponseFormat.B64_JSON: "The video comes straight back to the studio; the provider keeps "
    "a copy too.",
    Job.ResponseFormat.B64_EPHEMERAL: "The video comes straight back and the provider keeps no copy. "
    "The most private choice.",
}


def response_format_field() -> forms.ChoiceField:
    """The choice of where the provider puts the video, with what each choice means; the same
    on the generate, compare, variations and batch forms."""
    return forms.ChoiceField(
        label="Response format",
        choices=[
            (value, f"{label}: {RESPONSE_FORMAT_HELP[value]}")
            for value, label in Job.ResponseFormat.choices
        ],
        initial=Job.ResponseFormat.URL,
        widget=forms.RadioSelect,
    )


@dataclass(frozen=True)
class EarlierImage:
    """An image from one of the person's own earlier jobs that the form offers to use again:
    the job's input image, or (is_frame) the last frame of its video."""

    job: Job
    is_frame: bool = False

    @property
    def description(self) -> str:
        if self.is_frame:
            return "the last frame of your earlier video"
        return "the input image from your earlier video"

    @property
    def choice_label(self) -> str:
        return "Use this frame" if self.is_frame else "Use that image again"


@dataclass(frozen=True)
class ChargePlaces:
    """Where a person may charge a job: their personal space (unless settings.TEAM_REQUIRED)
    and each team they belong to; by default their default team, else the personal space."""

    teams: tuple[Team, ...]
    default_team: Team | None = None
    personal: bool = True

    @property
    def offered(self) -> bool:
        """Whether the form asks (a select): only for someone in a team."""
        return bool(self.teams)

    @property
    def nowhere(self) -> bool:
        """No place at all: a team is required and the person is in none."""
        return not self.personal and not self.teams

    def choices(self) -> list[tuple[str, str]]:
        personal = [(PERSONAL, "Personal")] if self.personal else []
        return personal + [(str(team.pk), team.name) for team in self.teams]

    @property
    def initial(self) -> str:
        if self.default_team is not None:
            return str(self.default_team.pk)
        if self.personal or not self.teams:
            return PERSONAL
        return str(self.teams[0].pk)

    def value_for(self, team: Team | None) -> str:
        """The select's value for `team`, or the default when it is not offered any more (a
        team the person has left, a personal job where a team is required)."""
        for value, _ in self.choices():
            if value == (PERSONAL if team is None else str(team.pk)):
                return value
        return self.initial

    def team_for(self, value: str | None) -> Team | None:
        """The team a Charge to value names (None: personal). KeyError if it is not offered."""
        if value == PERSONAL and self.personal:
            return None
        for team in self.teams:
            if str(team.pk) == value:
                return team
        raise KeyError(value)

    def team_or_default(self, value: str | None) -> Team | None:
        try:
            return self.team_for(value)
        except KeyError:
            return self.team_for(self.initial) if not self.nowhere else None


def charge_places_for(user) -> ChargePlaces:
    """The places `user` may charge, read afresh on every request: a membership removed a
    moment ago is gone from the choices at once."""
    memberships = list(selectors.memberships_for_user(user=user))
    default = next((m.team for m in memberships if m.is_default), None)
    return ChargePlaces(
        teams=tuple(m.team for m in memberships),
        default_team=default,
        personal=not settings.TEAM_REQUIRED,
    )


def charge_to_field(places: ChargePlaces) -> forms.ChoiceField:
    """The Charge to select. Changing it asks the options view for the place's models and
    budgets again (htmx); without JavaScript the submit is checked for the place all the same."""
    return forms.ChoiceField(
        label="Charge to",
        choices=places.choices(),
        initial=places.initial,
        help_text="Where the video is charged: your personal budget, or one of your teams'. "
        "A team's videos are shared with its members.",
        error_messages={
            "required": "Choose where to charge this video.",
            "invalid_choice": "You cannot charge videos there: you are not a member of that "
            "team. Choose one of the places listed.",
        },
        widget=forms.Select(
            attrs={
                "hx-get": reverse_lazy("jobs:create_options"),
                "hx-trigger": "change",
                "hx-target": "#model-options",
                "hx-swap": "innerHTML",
                "hx-include": CHARGE_INCLUDE,
                "hx-vals": '{"refresh_models": "true"}',
                "hx-sync": "this:replace",
            }
        ),
    )


EARLIER_IMAGE_HELP = (
    "Or choose another PNG, JPEG or WebP: a file you choose replaces the earlier one."
)
EARLIER_IMAGE_GONE = (
    "The image from your earlier video is no longer there. Choose an image, or none."
)


class JobForm(forms.Form):
    """The generate form. The seconds and size widgets, and whether the image field shows, follow
    the chosen model (`chosen_model`); the model select asks the options view for them again when
    it changes. clean() re-checks everything for the model actually posted."""

    prompt = forms.CharField(
        label="Prompt",
        # maxlength stops the browser early; clean_prompt says how much too long a prompt is.
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "maxlength": PROMPT_MAX_CHARS,
                "placeholder": "A red fox running through snow",
            }
        ),
        required=False,
    )
    model = forms.ChoiceField(
        label="Model",
        error_messages={
            "required": "Choose a model from the list.",
            "invalid_choice": "“%(value)s” is not a model this studio offers. "
            "Choose one from the list.",
        },
        widget=forms.Select(
            attrs={
                "hx-get": reverse_lazy("jobs:create_options"),
                "hx-trigger": "change",
                "hx-target": "#model-options",
                "hx-swap": "innerHTML",
                "hx-include": OPTIONS_INCLUDE,
                "hx-sync": "this:replace",  # choosing quickly: only the last choice's answer counts
            }
        ),
    )
    # Both are text on the server, whatever the widget: a select offers the model's choices, but
    # what is posted is checked against the model here (clean), never trusted.
    seconds = forms.CharField(
        label="Seconds",
        initial="auto",
        max_length=10,
        help_text="auto, or one of the durations the model offers.",
        error_messages={
            "required": "Enter auto, or a whole number of seconds from 1 to 60.",
            "max_length": "Enter auto, or a whole number of seconds from 1 to 60.",
        },
    )
    size = forms.CharField(
        label="Size",
        initial="auto",
        max_length=20,
        help_text="auto, or width x height, for example 1280x720.",
        error_messages={
            "required": "Enter auto, or a size such as 1280x720.",
            "max_length": "Enter auto, or a size such as 1280x720.",
        },
    )
    response_format = response_format_field()
    image = forms.FileField(
        label="Image",
        required=False,
        help_text="Optional, for image-to-video: PNG, JPEG or WebP.",
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/png,image/jpeg,image/webp", "data-preview": "true"}
        ),
    )
    # An image from an earlier job of the same person: the id travels in the form, and the job
    # is looked up again, for this owner, on every request (see _find_earlier_image).
    image_from_job = forms.UUIDField(required=False, widget=forms.HiddenInput)
    frame_from_job = forms.UUIDField(required=False, widget=forms.HiddenInput)
    use_earlier_image = forms.BooleanField(
        label="Use that image again",
        required=False,
        initial=True,
        # Kept as the person left it when the model changes and the options are swapped.
        widget=forms.CheckboxInput(attrs={"hx-preserve": "true"}),
    )

    def __init__(self, *args, models=(), owner=None, places: ChargePlaces | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial = dict(self.initial)  # adjusted below; never the caller's dict
        # Where the job is charged: a select for someone in a team; the personal space (or, with
        # TEAM_REQUIRED, nowhere) for everyone else. `models` are the ones allowed there.
        self.places = places
        self.team = None
        # A posted Charge to is checked even where the form offers none (a team the person
        # left since the page loaded): charging the personal space instead would be a surprise.
        posted_place = self.is_bound and self.add_prefix("charge_to") in self.data
        if places is not None and (places.offered or posted_place):
            self.fields = {"charge_to": charge_to_field(places), **self.fields}
            self.team = places.team_or_default(self._value("charge_to"))
            if not self.is_bound and self.initial.get("charge_to") is None:
                self.initial["charge_to"] = places.initial
        self.catalog = {model.id: model for model in models}
        self.fields["model"].choices = [
            (model.id, model_label(model)) for model in self.catalog.values()
        ]
        if "ir/test-video" in self.catalog:
            self.fields["model"].initial = "ir/test-video"
        self._explain_model_not_allowed(owner)
        self.chosen_model = self._chosen_model()
        if self.chosen_model is not None:
            self._fit_to(self.chosen_model)
        self.earlier_image, self._earlier_image_asked = self._find_earlier_image(owner)
        if self.earlier_image is not None:
            self.fields["use_earlier_image"].label = self.earlier_image.choice_label
            self.fields["image"].help_text = EARLIER_IMAGE_HELP
            if self.chosen_model is not None and not self.chosen_model.accepts_image:
                self.initial["use_earlier_image"] = False
        self.image_to_reuse: EarlierImage | None = None  # set by clean()

    def _explain_model_not_allowed(self, owner) -> None:
        """A posted model the person may use elsewhere but not where the job is charged (a
        team that staff limited to some models) is refused in ModelUnavailableError's words,
        which say to choose another model or charge the video elsewhere."""
        from .services.limits import ModelUnavailableError

        posted = self._value("model") if self.is_bound else None
        if not posted or posted in self.catalog or owner is None or self.team is None:
            return
        if selectors.catalog_models(user=owner).filter(pk=posted).exists():
            message = str(ModelUnavailableError(model=posted, team=self.team))
            self.fields["model"].error_messages["invalid_choice"] = message.replace("%", "%%")

    def clean_charge_to(self) -> Team | None:
        return self.places.team_for(self.cleaned_data["charge_to"])

    def _value(self, name):
        """What the form was given for `name`: the posted value, or the initial one."""
        if self.is_bound:
            return self.data.get(self.add_prefix(name))
        return self.initial.get(name)

    def _chosen_model(self) -> VideoModel | None:
        """The model whose options the form shows: the one given, if offered, else the default."""
        default = self.catalog.get(self.fields["model"].initial) or next(
            iter(self.catalog.values()), None
        )
        model = self.catalog.get(self._value("model") or "")
        if model is None and not self.is_bound and default is not None:
            self.initial["model"] = default.id
        return model or default

    def _fit_to(self, model: VideoModel) -> None:
        """Offer only what `model` makes, and start from values it accepts."""
        seconds, size = self.fields["seconds"], self.fields["size"]
        choices, default = seconds_choices(model)
        seconds.widget = forms.Select(choices=choices)
        seconds.initial = default
        if model.seconds:
            seconds.help_text = f"The lengths {model.id} makes."
        else:
            seconds.help_text = f"{model.id} sets its own length."
        if model.sizes:
            size.widget = forms.Select(choices=size_choices(model))
            size.help_text = f"auto lets {model.id} choose; or one of the sizes it makes."
        else:
            size.widget = forms.TextInput(attrs={"placeholder": "1280x720"})
            size.widget.attrs.update(size.widget_attrs(size.widget))  # maxlength, as at first
            size.help_text = (
                f"auto, or any width x height from {SIZE_SIDE_MIN} to {SIZE_SIDE_MAX:,} pixels, "
                "for example 1280x720."
            )
        if self.is_bound:
            return
        if self.initial.get("seconds") not in dict(choices):
            self.initial["seconds"] = default
        if not size_fits(model, self.initial.get("size")):
            self.initial["size"] = "auto"

    def _find_earlier_image(self, owner) -> tuple[EarlierImage | None, bool]:
        """(the earlier image the form names, whether it names one at all). Looked up for
        `owner` each time, so an id in the page is never trusted: someone else's job, a deleted
        one, or one without that image gives None."""
        for name, is_frame in (("frame_from_job", True), ("image_from_job", False)):
            raw = self._value(name)
            if not raw:
                continue
            job = _owned_job(owner, raw)
            if job is None:
                return None, True
            if is_frame and (job.status != Job.Status.SUCCEEDED or not job.video):
                return None, True
            if not is_frame and not job.input_image:
                return None, True
            return EarlierImage(job=job, is_frame=is_frame), True
        return None, False

    @property
    def image_field_hidden(self) -> bool:
        """The image field is hidden (the `hidden` attribute) for a model without image input,
        unless it carries an error the person must see."""
        model = self.chosen_model
        if model is None or model.accepts_image:
            return False
        return not (self.is_bound and "image" in self.errors)

    def clean_prompt(self) -> str:
        # A browser sends each typed line break as \r\n but counts it as one character against
        # maxlength, so count it as one here too.
        prompt = self.cleaned_data["prompt"].replace("\r\n", "\n")
        if len(prompt) > PROMPT_MAX_CHARS:
            raise forms.ValidationError(
                f"This prompt is {len(prompt):,} characters long; the most ImageRouter takes is "
                f"{PROMPT_MAX_CHARS:,}. Shorten it and try again."
            )
        return prompt

    def clean_model(self) -> VideoModel:
        return self.catalog[self.cleaned_data["model"]]

    def clean_size(self) -> str:
        size = self.cleaned_data["size"].strip().lower()
        if size == "auto":
            return size
        match = SIZE_PATTERN.match(size)
        if not match:
            raise forms.ValidationError("Enter auto, or a size such as 1280x720.")
        return f"{int(match[1])}x{int(match[2])}"

    def clean_seconds(self) -> str:
        seconds = self.cleaned_data["seconds"].strip().lower()
        if seconds == "auto":
            return seconds
        number = parse_whole_number(seconds, minimum=1, maximum=60)
        if number is None:
            raise forms.ValidationError("Enter auto, or a whole number of seconds from 1 to 60.")
        return str(number)

    def clean_image(self):
        """Accept only a PNG, JPEG or WebP that really is one, fully decodes, and is not too big
        in bytes or pixels (image_checks.checked_image says how)."""
        image = self.cleaned_data.get("image")
        if not image:
            return None
        return checked_image(image)

    def clean(self):
        cleaned = super().clean()
        model = cleaned.get("model")
        if not isinstance(model, VideoModel):
            return cleaned
        self.image_to_reuse = self._earlier_image_to_use(cleaned)
        image_sent = (
            bool(cleaned.get("image")) or self.has_error("image") or self.image_to_reuse is not None
        )
        if cleaned.get("image") and not model.accepts_image:
            self.add_error(
                "image",
                f"{model.id} does not take an input image. Remove the image, or choose a model "
                "marked “image → video”.",
            )
        elif self.image_to_reuse is not None and not model.accepts_image:
            self.add_error(
                "image",
                f"{model.id} does not take an input image. Untick “"
                f"{self.image_to_reuse.choice_label}”, or choose a model marked “image → video”.",
            )
        # Only an image-to-video model that is given an image may run without a prompt.
        needs_prompt = not (model.accepts_image and image_sent)
        if needs_prompt and "prompt" in cleaned and not cleaned["prompt"].strip():
            self.add_error("prompt", f"{model.id} needs a prompt. Describe the video you want.")
        seconds = cleaned.get("seconds")
        if seconds and seconds != "auto" and model.seconds and int(seconds) not in model.seconds:
            self.add_error(
                "seconds",
                f"{model.id} makes videos of {one_of(model.seconds)} seconds. "
                "Choose one of those, or auto.",
            )
        size = cleaned.get("size")
        if size and size != "auto":
            self._check_size_for(model, size)
        return cleaned

    def _earlier_image_to_use(self, cleaned) -> EarlierImage | None:
        """The earlier image to send, if the box is ticked and no new file was chosen (a chosen
        file wins). A ticked box whose image is gone, or not this person's, is an error."""
        if not cleaned.get("use_earlier_image") or cleaned.get("image"):
            return None
        if self.has_error("image"):
            return None
        if self.earlier_image is None and self._earlier_image_asked:
            self.add_error("image", EARLIER_IMAGE_GONE)
        return self.earlier_image

    def _check_size_for(self, model: VideoModel, size: str) -> None:
        if model.sizes:
            if size not in model.sizes:
                self.add_error(
                    "size",
                    f"{model.id} makes these sizes: {one_of(model.sizes)}. "
                    "Choose one of those, or auto.",
                )
            return
        width, height = (int(side) for side in size.split("x"))
        if not all(SIZE_SIDE_MIN <= side <= SIZE_SIDE_MAX for side in (width, height)):
            self.add_error(
                "size",
                f"Width and height must each be from {SIZE_SIDE_MIN} to {SIZE_SIDE_MAX:,} "
                f"pixels; {size} is not. Enter another size, or auto.",
            )


def _owned_job(owner, raw) -> Job | None:
    if owner is None:
        return None
    try:
        job_id = uuid.UUID(str(raw))
    except ValueError:
        return None
    try:
        return selectors.job_get_for_owner(user=owner, job_id=job_id)
    except Http404:
        return None


def seconds_choices(model: VideoModel) -> tuple[list[tuple[str, str]], str]:
    """(the seconds select's choices, the one selected at first): the model's durations, with
    its default selected; auto when it lists none or names no default."""
    choices = [(str(value), f"{value} seconds") for value in model.seconds]
    if model.seconds and model.default_seconds in model.seconds:
        return choices, str(model.default_seconds)
    return [("auto", "auto: the model decides"), *choices], "auto"


def size_choices(model: VideoModel) -> list[tuple[str, str]]:
    """auto, then the sizes the model makes, each with its shape, as in "1280 x 720 (landscape)" but with a times sign."""
    choices = [("auto", "auto: the model decides")]
    for size in model.sizes:
        match = SIZE_PATTERN.match(size)
        if not match:
            choices.append((size, size))
            continue
        width, height = int(match[1]), int(match[2])
        shape = "landscape" if width > height else "portrait" if height > width else "square"
        choices.append((size, f"{width} × {height} ({shape})"))
    return choices


def size_fits(model: VideoModel, size: str | None) -> bool:
    """Whether `size` is one `model` takes, as the form would accept it (for prefilling)."""
    if size == "auto":
        return True
    if not size:
        return False
    if model.sizes:
        return size in model.sizes
    match = SIZE_PATTERN.match(size)
    return bool(match) and all(
        SIZE_SIDE_MIN <= int(side) <= SIZE_SIDE_MAX for side in match.groups()
    )
