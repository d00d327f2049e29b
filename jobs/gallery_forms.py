"""The gallery's forms: the GET filter form and the bulk selection. Kept apart from forms.py (the
generate form) so each page's forms read on their own."""

import uuid

from django import forms

from .models import Job
from .selectors.jobs import KEEP_FILTERS

# More than a page of cards (PAGE_SIZE in jobs.views.gallery), so "select all on this page" always
# fits; a bound on how much one request may delete or pack into a zip.
MAX_SELECTION = 100


class GalleryFilterForm(forms.Form):
    """What My videos shows. Every field is optional; an unknown value is ignored, not an error
    page, since these come from links people share and edit."""

    q = forms.CharField(
        label="Search prompts",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Words in the prompt"}),
    )
    status = forms.ChoiceField(label="Status", required=False)
    model = forms.ChoiceField(label="Model", required=False)
    keep = forms.ChoiceField(label="Keeping", required=False)

    def __init__(self, *args, models: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), *Job.Status.choices]
        self.fields["keep"].choices = [("", "All"), *KEEP_FILTERS.items()]
        self.fields["model"].choices = [("", "Any model"), *((m, m) for m in models)]

    def filters(self) -> dict:
        """The valid filters, as keyword arguments for selectors.job_search_for_user."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "status": data.get("status", ""),
            "model": data.get("model", ""),
            "query": data.get("q", "").strip(),
            "keep": data.get("keep", ""),
        }

    @property
    def is_filtered(self) -> bool:
        return any(self.filters().values())


def selected_job_ids(data) -> list[uuid.UUID]:
    """The job ids ticked in a bulk form, in order, without repeats. Anything that is not a UUID
    is dropped: it could never name a job. Raises ValueError past MAX_SELECTION."""
    ids = {}
    for value in data.getlist("job"):
        try:
            ids[uuid.UUID(value)] = None
        except ValueError:
            continue
    if len(ids) > MAX_SELECTION:
        raise ValueError(f"Select at most {MAX_SELECTION} videos at a time.")
    return list(ids)
