import io
import math
import os
import re
import struct
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404
from django.urls import reverse_lazy
from PIL import Image, UnidentifiedImageError

from . import selectors
from .models import Job, VideoModel
from .numbers import parse_whole_number
from .templatetags.studio import usd

PROMPT_MAX_CHARS = 10_000
SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX×*]\s*(\d+)\s*$")
# A model that lists no sizes takes any W x H; these bounds keep a typo from reaching the API.
SIZE_SIDE_MIN, SIZE_SIDE_MAX = 64, 4096


@dataclass(frozen=True)
class ImageKind:
    label: str  # as people know it
    extension: str  # the studio stores an upload as input.<extension>, whatever it was called
    content_types: frozenset[str]  # what browsers send for it, odd old spellings included


# The input images the studio accepts, by Pillow's format name.
IMAGE_FORMATS = {
    "PNG": ImageKind("PNG", "png", frozenset({"image/png", "image/x-png"})),
    "JPEG": ImageKind("JPEG", "jpg", frozenset({"image/jpeg", "image/jpg", "image/pjpeg"})),
    "WEBP": ImageKind("WebP", "webp", frozenset({"image/webp"})),
}
# Pillow names a JPEG that carries extra pictures (many cameras and phones write them) "MPO".
# Every JPEG decoder reads its first picture, so it is a JPEG for the studio's purposes.
FORMAT_ALIASES = {"MPO": "JPEG"}
# What Pillow raises on a damaged file, besides UnidentifiedImageError (an OSError) for a file
# that is no image at all.
PILLOW_READ_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
)
# JPEG start-of-frame markers, which carry the image size (C4, C8 and CC are not frames).
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
MEGABYTE = 1024 * 1024
# What the model select sends when it changes: the model itself (htmx adds the select), the
# fields that depend on the model, and the hidden ids of an earlier image. Not the prompt (it
# stays where it is and could be 10,000 characters long in a URL), not the file, not the token.
OPTIONS_INCLUDE = "#model-options select, #model-options input:not([type=file])"

NOT_AN_IMAGE = "This file is not an image. Choose a PNG, JPEG or WebP picture."
UNREADABLE_IMAGE = (
    "This file is damaged or cut short: it is not an image we can read. "
    "Save it again and try once more."
)

RESPONSE_FORMAT_HELP = {
    Job.ResponseFormat.URL: "The provider stores the video at a link anyone who has it can open.",
    Job.ResponseFormat.B64_JSON: "The video comes straight back to the studio; the provider keeps "
    "a copy too.",
    Job.ResponseFormat.B64_EPHEMERAL: "The video comes straight back and the provider keeps no copy. "
    "The most private choice.",
}


class SignupForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


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
    response_format = forms.ChoiceField(
        label="Response format",
        choices=[
            (value, f"{label}: {RESPONSE_FORMAT_HELP[value]}")
            for value, label in Job.ResponseFormat.choices
        ],
        initial=Job.ResponseFormat.URL,
        widget=forms.RadioSelect,
    )
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

    def __init__(self, *args, models=(), owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial = dict(self.initial)  # adjusted below; never the caller's dict
        self.catalog = {model.id: model for model in models}
        self.fields["model"].choices = [
            (model.id, model_label(model)) for model in self.catalog.values()
        ]
        if "ir/test-video" in self.catalog:
            self.fields["model"].initial = "ir/test-video"
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
        in bytes or pixels. The file keeps none of what the browser said about it: it is stored
        as input.<extension of the format found inside>.

        1. Refuse more than UPLOAD_MAX_BYTES.
        2. Read the width and height from the header ourselves and refuse too many pixels,
           before Pillow allocates or decodes anything.
        3. Open it with Pillow (decompression-bomb warnings made errors): refuse a file that is
           not an image, a format we do not accept, or too many pixels; verify() its structure.
        4. Refuse a name or Content-Type that claims another image format.
        5. Decode it in full (load() on a fresh open), so a damaged file fails here, not later.
        """
        image = self.cleaned_data.get("image")
        if not image:
            return None
        _check_upload_bytes(image.size)
        image.seek(0)
        data = image.read()
        _check_pixels(_header_size(data))
        kind = _identify(data)
        _check_claimed_format(image, kind)
        _check_decodes(data)
        image.seek(0)
        image.name = f"input.{IMAGE_FORMATS[kind].extension}"
        return image

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
                f"{model.id} makes videos of {_one_of(model.seconds)} seconds. "
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
                    f"{model.id} makes these sizes: {_one_of(model.sizes)}. "
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


# What the form says about a model: its price, the budget left, the usual wait. The model
# select's labels and the estimate beside it use these same words, so they always agree.

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


def budget_words(status: selectors.BudgetStatus) -> str:
    if status.limit is None:
        return "No monthly limit."
    return f"You have {usd(max(status.left, Decimal(0)))} left this month."


def over_budget_words(model: VideoModel, status: selectors.BudgetStatus) -> str:
    """A warning when the model's top price is more than what is left: the submit would be
    refused (budgets.budget_reserve holds the top price). Empty when it fits."""
    if status.limit is None or model.price_max <= status.left:
        return ""
    return (
        f"This model can cost up to {usd(model.price_max)}, more than you have left, so "
        "Generate would be refused. Choose a cheaper model, or ask an admin to raise your budget."
    )


def wait_words(median_seconds: float | None, sample: int) -> str:
    """How long a video on this model usually takes here, or the honest general answer."""
    if median_seconds is None or sample < 1:
        return NO_WAIT_HISTORY
    basis = "the only one made here so far" if sample == 1 else f"median of the last {sample} here"
    return f"Usually ready in about {duration_words(median_seconds)} ({basis})."


def duration_words(seconds: float) -> str:
    """70 → "1 min 10 s", 45 → "45 s", 120 → "2 min", 3900 → "1 h 5 min"."""
    total = max(1, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, rest = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _usd_range(low, high) -> str:
    return usd(high) if low == high else f"{usd(low)}–{usd(high)}"


def _one_of(values) -> str:
    """[4, 8, 12] → "4, 8 or 12"."""
    words = [str(value) for value in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


# The upload checks, in the order clean_image runs them.


def _check_upload_bytes(size: int) -> None:
    limit = settings.UPLOAD_MAX_BYTES
    if size > limit:
        raise forms.ValidationError(
            f"This file is {_file_size(size, round_up=True)}; the most we accept is "
            f"{_file_size(limit)}. Save a smaller image and try again."
        )


def _max_pixels() -> int:
    """Our limit, or Pillow's decompression-bomb limit if that is lower: above it, Pillow
    would warn, and the warning is an error here."""
    if Image.MAX_IMAGE_PIXELS is None:
        return settings.UPLOAD_MAX_PIXELS
    return min(settings.UPLOAD_MAX_PIXELS, Image.MAX_IMAGE_PIXELS)


def _check_pixels(size: tuple[int, int] | None) -> None:
    if size is not None and size[0] * size[1] > _max_pixels():
        raise forms.ValidationError(_too_many_pixels(size))


def _too_many_pixels(size: tuple[int, int] | None) -> str:
    limit = f"the most we accept is {_pixel_count(_max_pixels())}"
    if size is None:  # Pillow refused it before saying its size
        return f"This image has too many pixels; {limit}. Scale it down and try again."
    return f"This image is {size[0]} × {size[1]} pixels; {limit}. Scale it down and try again."


def _header_size(data: bytes) -> tuple[int, int] | None:
    """The width and height a PNG, JPEG or WebP header declares, read without Pillow, so the
    pixel limit holds before anything is allocated or decoded (Pillow's WebP reader allocates
    its canvas as it opens). None for other formats, which _identify then checks through Pillow.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        size = _webp_size(data)
        if size is None:  # Pillow would not know it either, and would allocate regardless
            raise forms.ValidationError(UNREADABLE_IMAGE)
        return size
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size from a WebP's first chunk: VP8X (extended), VP8L (lossless) or VP8."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return (
            int.from_bytes(data[24:27], "little") + 1,
            int.from_bytes(data[27:30], "little") + 1,
        )
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(data[26:28], "little") & 0x3FFF,
            int.from_bytes(data[28:30], "little") & 0x3FFF,
        )
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk a JPEG's marker segments to its frame header, which holds the size. None if there
    is none before the image data starts (Pillow then reads it, without decoding)."""
    position = 2
    while (position := data.find(b"\xff", position)) != -1 and position + 1 < len(data):
        marker = data[position + 1]
        if marker in (0x00, 0x01, 0xFF) or 0xD0 <= marker <= 0xD8:
            position += 1 if marker == 0xFF else 2  # fill byte, or a marker with no segment
            continue
        if marker in (0xD9, 0xDA):  # end of image, or start of the image data
            return None
        if marker in JPEG_FRAME_MARKERS:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack_from(">HH", data, position + 5)
            return width, height
        if position + 4 > len(data):
            return None
        position += 2 + max(2, int.from_bytes(data[position + 2 : position + 4], "big"))
    return None


@contextmanager
def _reading_image():
    """Pillow, strict: a decompression-bomb warning is an error, and any failure to read is a
    message for the person.

    catch_warnings swaps the process-wide filter list, which is not thread-safe before Python
    3.14: a request on another thread may see our filter or drop it. Nothing relies on it alone:
    the pixel checks before and after Image.open hold anyway, and the filter only backs them up.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise forms.ValidationError(_too_many_pixels(None)) from None
        except UnidentifiedImageError:
            raise forms.ValidationError(NOT_AN_IMAGE) from None
        except PILLOW_READ_ERRORS:
            raise forms.ValidationError(UNREADABLE_IMAGE) from None


def _identify(data: bytes) -> str:
    """The format Pillow finds inside (a key of IMAGE_FORMATS), after a structural verify()."""
    with _reading_image(), Image.open(io.BytesIO(data)) as picture:
        kind = _canonical(picture.format)
        if kind not in IMAGE_FORMATS:
            raise forms.ValidationError(f"{kind} images are not accepted: use PNG, JPEG or WebP.")
        _check_pixels(picture.size)
        picture.verify()
    return kind


def _check_claimed_format(upload, kind: str) -> None:
    """Refuse a file whose name or Content-Type names another image format than the one inside.

    A name or type that names no image format (no extension, "blob", "a.php",
    application/octet-stream) is not refused: the studio ignores both and stores the file as
    input.<the real format's extension>, so they can do no harm, and phones and pasted images
    often send them.
    """
    real = IMAGE_FORMATS[kind]
    extension = os.path.splitext(upload.name or "")[1].lower()
    named = _canonical(Image.registered_extensions().get(extension))
    if named is not None and named != kind:
        raise forms.ValidationError(
            f"This file is named {extension} but holds a {real.label} image. "
            f"Rename it to end in .{real.extension} and try again."
        )
    content_type = (upload.content_type or "").strip().lower()
    sent_as = _canonical(_formats_by_content_type().get(content_type))
    if sent_as is not None and sent_as != kind:
        raise forms.ValidationError(
            f"This file was sent as {content_type} but holds a {real.label} image. "
            f"Save it again as a {real.label} file ending in .{real.extension} and try again."
        )


def _canonical(pillow_format: str | None) -> str | None:
    return FORMAT_ALIASES.get(pillow_format, pillow_format)


def _formats_by_content_type() -> dict[str, str]:
    """Every Content-Type that names an image format Pillow knows, ours included."""
    Image.init()
    known = {content_type: name for name, content_type in Image.MIME.items()}
    for name, kind in IMAGE_FORMATS.items():
        known.update(dict.fromkeys(kind.content_types, name))
    return known


def _check_decodes(data: bytes) -> None:
    """verify() cannot see damaged image data (and does nothing for JPEG): decode it all."""
    with _reading_image(), Image.open(io.BytesIO(data)) as picture:
        picture.load()


def _file_size(size: int, *, round_up: bool = False) -> str:
    """Bytes for people: "10 MB", "1.5 MB", "300 KB". A size over a limit rounds up and the limit
    rounds down, so a file a byte too big never reads as the same size as the limit."""
    unit, name = (MEGABYTE, "MB") if size >= MEGABYTE else (1024, "KB")
    rounding = math.ceil if round_up else math.floor
    value = rounding(size * 10 / unit) / 10
    return f"{value:g} {name}"


def _pixel_count(pixels: int) -> str:
    """40_000_000 → "40 megapixels", rounded down, as a limit should be."""
    if pixels < 1_000_000:
        return f"{pixels:,} pixels"
    return f"{math.floor(pixels / 100_000) / 10:g} megapixels"
