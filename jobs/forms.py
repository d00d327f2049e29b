import re

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from PIL import Image, UnidentifiedImageError

from .models import Job, VideoModel
from .templatetags.studio import usd

PROMPT_MAX_CHARS = 10_000
SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX×*]\s*(\d+)\s*$")
IMAGE_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}

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


class JobForm(forms.Form):
    prompt = forms.CharField(
        label="Prompt",
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "A red fox running through snow"}),
        required=False,
        max_length=PROMPT_MAX_CHARS,
    )
    model = forms.ChoiceField(label="Model")
    size = forms.CharField(
        label="Size",
        initial="auto",
        max_length=20,
        help_text="auto, or width x height, for example 1280x720.",
    )
    seconds = forms.CharField(
        label="Seconds",
        initial="auto",
        max_length=10,
        help_text="auto, or one of the durations the model offers.",
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
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )

    def __init__(self, *args, models=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = {model.id: model for model in models}
        self.fields["model"].choices = [
            (model.id, _model_label(model)) for model in self.catalog.values()
        ]
        if "ir/test-video" in self.catalog:
            self.fields["model"].initial = "ir/test-video"

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
        if not seconds.isdigit() or not 1 <= int(seconds) <= 60:
            raise forms.ValidationError("Enter auto, or a whole number of seconds from 1 to 60.")
        return str(int(seconds))

    def clean_image(self):
        image = self.cleaned_data.get("image")
        if not image:
            return None
        if image.size > settings.UPLOAD_MAX_BYTES:
            limit = settings.UPLOAD_MAX_BYTES // (1024 * 1024)
            raise forms.ValidationError(f"The image is larger than {limit} MB.")
        try:
            with Image.open(image) as picture:
                picture.verify()
                kind = picture.format
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise forms.ValidationError("This file is not an image we can read.") from None
        if kind not in IMAGE_FORMATS:
            raise forms.ValidationError(f"{kind} images are not accepted: use PNG, JPEG or WebP.")
        image.seek(0)
        return image

    def clean(self):
        cleaned = super().clean()
        model = cleaned.get("model")
        if not isinstance(model, VideoModel):
            return cleaned
        if cleaned.get("image") and not model.accepts_image:
            self.add_error("image", f"{model.id} does not take an input image.")
        if not cleaned.get("prompt", "").strip() and not cleaned.get("image"):
            self.add_error("prompt", "Describe the video you want.")
        seconds = cleaned.get("seconds")
        if seconds and seconds != "auto" and model.seconds and int(seconds) not in model.seconds:
            offered = ", ".join(str(s) for s in model.seconds)
            self.add_error("seconds", f"{model.id} makes videos of {offered} seconds.")
        size = cleaned.get("size")
        if size and size != "auto" and model.sizes and size not in model.sizes:
            self.add_error("size", f"{model.id} makes these sizes: {', '.join(model.sizes)}.")
        return cleaned


def _model_label(model: VideoModel) -> str:
    if model.is_free:
        price = "free"
    elif model.price_min == model.price_max:
        price = usd(model.price_max)
    else:
        price = f"{usd(model.price_min)}–{usd(model.price_max)}"
    tag = " · image → video" if model.accepts_image else ""
    return f"{model.name} ({price}){tag}"
