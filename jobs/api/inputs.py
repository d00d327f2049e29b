"""Reading a generation request as the provider reads it: JSON or multipart, the same fields,
the same defaults, and images as uploads (`image` or `image[]`), URLs or data URIs.

What comes out is what the web form would have been posted, so JobForm checks it with the one
set of rules the form uses (views.generations). Only the shape is checked here: types, which
fields exist, how many images.
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http.multipartparser import MultiPartParserError

from .errors import ApiError, invalid
from .images import image_from_string
from .jsonbody import loads_bounded

IMAGE_FIELDS = ("image", "image[]")
MAX_IMAGES = 6  # the provider's limit; current models use only the first
INDEXED_IMAGE_FIELD = re.compile(r"^image\[\d+\]$")
# The provider's defaults for what a request leaves out.
DEFAULTS = {"size": "auto", "seconds": "auto", "response_format": "url"}
TEXT_FIELDS = ("model", "prompt", "size", "seconds", "response_format")
WEBHOOK_FIELD = "webhook_url"
WEBHOOK_URL_MAX = 2000


@dataclass
class GenerationInput:
    data: dict[str, str]  # the form's fields, as a browser would post them
    images: list  # uploaded files and strings (URLs, data URIs), in the order given
    # The studio's extension: where to POST the job's final state (None: the token's default).
    webhook_url: str | None = None

    @property
    def model(self) -> str:
        return self.data["model"]

    def first_image(self):
        """The image to use, as an upload: the first one, as the provider's models do. The
        others are checked for shape only, never fetched."""
        if not self.images:
            return None
        image = self.images[0]
        if isinstance(image, str):
            return image_from_string(image, field="image")
        return image


def read_generation(request) -> GenerationInput:
    content_type = request.content_type.lower()
    if content_type == "multipart/form-data":
        fields, images = _multipart(request)
        webhook_url = request.POST.get(WEBHOOK_FIELD)
    elif content_type == "application/json" or content_type.endswith("+json"):
        fields, images, webhook_url = _json(request)
    else:
        raise ApiError(
            415,
            "Send the request as JSON (Content-Type: application/json) or as multipart/form-data.",
            "invalid_request_error",
            code="unsupported_media_type",
        )
    if len(images) > MAX_IMAGES:
        raise invalid(f"Maximum of {MAX_IMAGES} images can be uploaded", param="image")
    # An empty string is no image, as an empty file field in a form is none.
    images = [image for image in images if not isinstance(image, str) or image.strip()]
    if not fields.get("model"):
        raise invalid("'model' is a required parameter", param="model")
    data = {**DEFAULTS, "prompt": "", **{k: v for k, v in fields.items() if v is not None}}
    webhook_url = (webhook_url or "").strip() or None
    if webhook_url is not None and len(webhook_url) > WEBHOOK_URL_MAX:
        raise invalid(
            f"'{WEBHOOK_FIELD}' is longer than {WEBHOOK_URL_MAX} characters", param=WEBHOOK_FIELD
        )
    return GenerationInput(data=data, images=images, webhook_url=webhook_url)


def _json(request) -> tuple[dict, list, str | None]:
    # Read directly, not through request.body: a data URI image is larger than Django's
    # in-memory limit for form fields. RequestBodyLimitMiddleware has bounded the body.
    raw = request.read(settings.REQUEST_MAX_BYTES + 1)
    body = loads_bounded(raw or b"{}")
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    for name in body:
        if INDEXED_IMAGE_FIELD.match(name):
            raise invalid("File upload error: Unexpected field", param=name)
    fields = {name: _json_field(body, name) for name in TEXT_FIELDS if name in body}
    images = []
    for name in IMAGE_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in values):
            raise invalid(
                f"'{name}' must be a URL or a data URI string, or a list of them", param=name
            )
        images.extend(values)
    webhook_url = body.get(WEBHOOK_FIELD)
    if webhook_url is not None and not isinstance(webhook_url, str):
        raise invalid(f"'{WEBHOOK_FIELD}' must be a URL string", param=WEBHOOK_FIELD)
    return fields, images, webhook_url


def _json_field(body: dict, name: str) -> str | None:
    """A field as the form would receive it: text. `seconds` may also be a number."""
    value = body[name]
    if value is None or isinstance(value, str):
        return value
    if name == "seconds" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    kind = "a string or a number" if name == "seconds" else "a string"
    raise invalid(f"'{name}' must be {kind}", param=name)


def _multipart(request) -> tuple[dict, list]:
    try:
        files, posted = request.FILES, request.POST
    except RequestDataTooBig:
        raise ApiError(
            413,
            "The form fields are too large: upload the image as a file rather than a data URI.",
            "invalid_request_error",
            code="request_too_large",
        ) from None
    except (MultiPartParserError, TooManyFieldsSent) as exc:
        raise invalid(f"Malformed multipart/form-data body: {exc}") from None
    for name in files:
        if name not in IMAGE_FIELDS:
            # multer's answer to a file field it wasn't told about, image[0] included.
            raise invalid("File upload error: Unexpected field", param=name)
    for name in posted:
        if INDEXED_IMAGE_FIELD.match(name):
            raise invalid("File upload error: Unexpected field", param=name)
    images = [upload for name in IMAGE_FIELDS for upload in files.getlist(name)]
    images += [text for name in IMAGE_FIELDS for text in posted.getlist(name)]
    fields = {name: posted.get(name) for name in TEXT_FIELDS if name in posted}
    return fields, images
