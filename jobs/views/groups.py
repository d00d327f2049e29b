"""Comparisons and variations: their forms (one prompt on 2 to 6 models; 2 to 8 runs of one),
the estimates and worst-case total beside them, and the group page: a grid of the videos as they
arrive, played together, with "Keep this one", one share link and one zip."""

import logging
import uuid
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from jobs import selectors, services
from jobs.forms import charge_places_for
from jobs.group_forms import GroupForm, model_slug
from jobs.models import Job, JobGroup
from jobs.numbers import parse_whole_number
from jobs.templatetags.studio import usd
from jobs.wording import budget_words, in_sentence, price_words
from jobs.zipstream import ZipStream

from .compose import NOWHERE_TO_CHARGE
from .jobs import may_act

logger = logging.getLogger(__name__)

SUBMIT_TOKEN_FIELD = "submit_token"  # noqa: S105 - a field name, not a secret
ALREADY_SUBMITTED = (
    "You had already pressed the button for these videos, so nothing more was started: here "
    "they are."
)
KIND_TITLES = {
    JobGroup.Kind.COMPARISON: "Compare models",
    JobGroup.Kind.VARIATIONS: "Variations",
    JobGroup.Kind.BATCH: "Batch",
}


@login_required
@require_http_methods(["GET", "POST"])
def group_compare(request):
    """Compare models: one prompt (and optional image) on 2 to 6 models."""
    return _group_form(request, JobGroup.Kind.COMPARISON)


@login_required
@require_http_methods(["GET", "POST"])
def group_variations(request):
    """Variations: 2 to 8 runs of one model with the same settings."""
    return _group_form(request, JobGroup.Kind.VARIATIONS)


def _group_form(request, kind: str):
    """The form, and its submit: all the jobs are accepted together (job_group_create) or the
    form comes back with the refusal, which names the level that is short and by how much."""
    places = charge_places_for(request.user)
    source = request.POST if request.method == "POST" else request.GET
    team = places.team_or_default(source.get("charge_to"))
    models = list(selectors.catalog_models(user=request.user, team=team))
    if request.method == "POST":
        form = GroupForm(request.POST, request.FILES, kind=kind, models=models, places=places)
        if form.is_valid():
            try:
                group, created = _create_once(
                    request,
                    owner=request.user,
                    kind=kind,
                    team=form.cleaned_data.get("charge_to", form.team),
                    specs=form.specs,
                    image=form.cleaned_data.get("image"),
                )
            except services.ChargeRefusedError as exc:
                form.add_error("charge_to" if "charge_to" in form.fields else None, str(exc))
            except services.SubmitRefusedError as exc:
                form.add_error(None, str(exc))
            else:
                if not created:
                    messages.info(request, ALREADY_SUBMITTED)
                return redirect("jobs:group", group_id=group.pk)
    else:
        initial = {"charge_to": places.value_for(team)} if places.offered else {}
        if kind == JobGroup.Kind.VARIATIONS:
            chosen = request.GET.get("model")
            default = "ir/test-video" if any(m.id == "ir/test-video" for m in models) else None
            initial["model"] = chosen or default or (models[0].id if models else None)
        else:
            initial["models"] = request.GET.getlist("models")
        form = GroupForm(kind=kind, models=models, places=places, initial=initial)
    context = {
        "form": form,
        "kind": kind,
        "title": KIND_TITLES[kind],
        "facts": group_facts_for(request.user, form, models),
        "catalog_empty": not models,
        "nowhere_to_charge": NOWHERE_TO_CHARGE if places.nowhere else "",
        "submit_token": uuid.uuid4().hex,
    }
    return render(request, "jobs/group_form.html", context)


def _create_once(request, **fields) -> tuple[JobGroup, bool]:
    """services.group_create_once under the form's submit token (as the generate form does):
    pressing the button twice, or sending the form again, lands on the first group."""
    try:
        token = uuid.UUID(request.POST.get(SUBMIT_TOKEN_FIELD, "")).hex
    except ValueError:
        return services.job_group_create(**fields), True
    posted = {
        name: request.POST.getlist(name)
        for name in sorted(request.POST)
        if name not in ("csrfmiddlewaretoken", SUBMIT_TOKEN_FIELD)
    }
    fingerprint = services.request_fingerprint(posted, request.FILES.getlist("image"))
    return services.group_create_once(
        key=f"group:{token}:{fingerprint}", fingerprint=fingerprint, **fields
    )


@login_required
@require_GET
def group_facts(request):
    """The estimates beside the ticked models and the worst-case total, with what is left at
    each budget level where the group would be charged: what the form's rows fetch (htmx) when
    a tick, a model or the number of runs changes."""
    kind = request.GET.get("kind")
    if kind not in (JobGroup.Kind.COMPARISON, JobGroup.Kind.VARIATIONS):
        kind = JobGroup.Kind.COMPARISON
    places = charge_places_for(request.user)
    team = places.team_or_default(request.GET.get("charge_to"))
    models = list(selectors.catalog_models(user=request.user, team=team))
    form = GroupForm(request.GET, kind=kind, models=models, places=places)
    context = {"facts": group_facts_for(request.user, form, models)}
    return render(request, "jobs/group_form.html#facts", context)


def group_facts_for(user, form: GroupForm, models) -> dict:
    """Each chosen model's estimate, the worst-case total, and each budget level's words."""
    catalog = {model.id: model for model in models}
    chosen = [catalog[model_id] for model_id in form.chosen_ids()]
    runs = 1
    if form.kind == JobGroup.Kind.VARIATIONS:
        runs = parse_whole_number(form.data.get("runs") if form.is_bound else None, minimum=1)
        runs = runs or form.fields["runs"].initial
    statuses = selectors.budget_statuses_for_charge(user=user, team=form.team)
    total = sum((model.price_max for model in chosen), Decimal(0)) * runs
    typical = sum((model.price_average for model in chosen), Decimal(0)) * runs
    count = len(chosen) * runs
    warning = ""
    for status in statuses:
        if status.limit is not None and total > status.left:
            warning = (
                f"These {count} videos could cost up to {usd(total)} together, "
                f"{usd(total - status.left_or_zero)} more than {in_sentence(status.label)} has "
                f"left {status.period_words}, so they would be refused. Choose fewer or "
                "cheaper models."
            )
            break
    return {
        "lines": [(model, price_words(model)) for model in chosen],
        "runs": runs,
        "count": count,
        "total": total,
        "typical": typical,
        "budgets": [budget_words(status) for status in statuses]
        or ([f"No budget limit applies to the {form.team.label}."] if form.team else []),
        "warning": warning,
    }


# The group page -----------------------------------------------------------------------------


def _group_context(request, group: JobGroup) -> dict:
    jobs = list(selectors.group_jobs(group=group))
    for job in jobs:
        job.may = may_act(request, job)
    finished = [job for job in jobs if job.is_terminal]
    costs = [job.cost for job in jobs if job.cost is not None]
    return {
        "group": group,
        "jobs": jobs,
        "title": KIND_TITLES[group.kind],
        "prompt": jobs[0].prompt if jobs else "",
        "done": len(finished),
        "live": len(finished) < len(jobs),
        "cost_so_far": sum(costs, Decimal(0)),
        "has_videos": any(job.video for job in jobs),
        "is_owner": group.owner_id == request.user.pk,
    }


@login_required
@require_GET
def group_detail(request, group_id):
    """The comparison's (or variations') page: every video in a grid, as it arrives (each card
    polls itself). ?part=summary is the summary alone (done, cost so far, download, share),
    which the page polls every 5 s while a video is live. After "Keep this one" (?kept=<job
    id>) it offers to delete the others in one step."""
    group = selectors.group_get_for_user(user=request.user, group_id=group_id)
    context = _group_context(request, group)
    if request.GET.get("part") == "summary":
        if context["live"]:
            return render(request, "jobs/group_detail.html#summary", context)
        return HttpResponseStopPolling(
            render_to_string("jobs/group_detail.html#summary", context, request=request)
        )
    kept = request.GET.get("kept")
    if kept:
        keeper = next((job for job in context["jobs"] if str(job.pk) == kept), None)
        if keeper is not None and keeper.starred_at is not None:
            others = list(selectors.group_jobs_for_delete(user=request.user, group=group))
            others = [job for job in others if job.pk != keeper.pk]
            context["kept"] = keeper
            context["others_finished"] = sum(1 for job in others if job.is_terminal)
            context["others_live"] = sum(1 for job in others if not job.is_terminal)
    return render(request, "jobs/group_detail.html", context)


@login_required
@require_GET
def group_card(request, job_id):
    """One card of the group's grid, which a live card polls every 2 s; the terminal answer
    (286, no trigger) stops the polling. One query: the job, through job_get_for_user."""
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    job.may = may_act(request, job)
    context = {"job": job, "group_id": job.group_id}
    if not job.is_terminal:
        return render(request, "jobs/_group_card.html", context)
    return HttpResponseStopPolling(
        render_to_string("jobs/_group_card.html", context, request=request)
    )


@login_required
@require_POST
def group_keep(request, group_id):
    """ "Keep this one": star the chosen video, then (on the page it comes back to) offer to
    delete the others. With delete_others=1 it deletes them too, the live ones skipped. Its
    owner may, and a manager of its team, as for the star and delete of one video."""
    group = selectors.group_get_for_user(user=request.user, group_id=group_id)
    try:
        job_id = uuid.UUID(request.POST.get("job", ""))
    except ValueError:
        messages.error(request, "Choose the video to keep.")
        return redirect("jobs:group", group_id=group.pk)
    deletable = list(selectors.group_jobs_for_delete(user=request.user, group=group))
    keeper = next((job for job in deletable if job.pk == job_id), None)
    if keeper is None or keeper.status != Job.Status.SUCCEEDED:
        messages.error(request, "Only one of your finished videos in this group can be kept.")
        return redirect("jobs:group", group_id=group.pk)
    others = deletable if request.POST.get("delete_others") == "1" else []
    kept, deleted, skipped = services.group_keep_one(keep=keeper, others=others)
    if not kept:
        messages.info(request, "Too late: this video has expired, and its files are deleted.")
        return redirect("jobs:group", group_id=group.pk)
    if not others:
        messages.success(request, "Starred: this video is kept, whatever the retention.")
        return redirect(f"{_group_url(group)}?kept={keeper.pk}")
    message = (
        f"Kept this one and deleted {deleted} other video{'s' if deleted != 1 else ''}. "
        "What they cost stays on record."
    )
    if skipped:
        message += (
            f" {skipped} {'is' if skipped == 1 else 'are'} still in progress and "
            f"{'was' if skipped == 1 else 'were'} not deleted."
        )
    messages.success(request, message)
    return redirect("jobs:group", group_id=group.pk)


def _group_url(group) -> str:
    return reverse("jobs:group", args=[group.pk])


@login_required
@require_GET
def group_download(request, group_id):
    """The group's videos as one .zip, streamed as it is written, named by their place and
    model (01-google-veo-3-1-fast.mp4), so the files sort as the grid does."""
    group = selectors.group_get_for_user(user=request.user, group_id=group_id)
    jobs = [job for job in selectors.group_jobs(group=group) if job.video]
    if not jobs:
        messages.info(request, "None of these videos is ready to download yet.")
        return redirect("jobs:group", group_id=group.pk)
    response = StreamingHttpResponse(_zip_chunks(jobs), content_type="application/zip")
    day = timezone.localdate().isoformat()
    name = f"videostudio-{group.kind}-{day}-{group.pk.hex[:8]}.zip"
    response["Content-Disposition"] = content_disposition_header(True, name)
    response["Cache-Control"] = "private, no-store"
    return response


def _zip_chunks(jobs):
    stream = ZipStream()
    width = len(str(len(jobs)))
    taken = set()
    for job in jobs:
        name = f"{job.group_position + 1:0{width}d}-{model_slug(job.model)}.mp4"
        if name in taken:
            name = name.removesuffix(".mp4") + f"-{job.pk.hex[:8]}.mp4"
        taken.add(name)
        try:
            yield from stream.add_stored_file(name, job.video, when=job.created_at)
        except FileNotFoundError:
            logger.warning("job %s: video %s is missing from storage", job.pk, job.video.name)
    yield from stream.close()


@login_required
@require_POST
def group_share(request, group_id):
    group = selectors.group_get_for_owner(user=request.user, group_id=group_id)
    try:
        services.group_share_create(group=group)
    except services.NotShareableError as exc:
        messages.info(request, str(exc))
    else:
        messages.success(
            request, "Share link ready. Anyone with it can watch these videos, side by side."
        )
    return redirect("jobs:group", group_id=group.pk)


@login_required
@require_POST
def group_unshare(request, group_id):
    group = selectors.group_get_for_owner(user=request.user, group_id=group_id)
    if services.group_share_revoke(group=group):
        messages.success(request, "Stopped sharing. The link no longer works.")
    return redirect("jobs:group", group_id=group.pk)
