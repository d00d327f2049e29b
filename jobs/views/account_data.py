"""A person's own data: download all of it as one streamed .zip (jobs/exports.py), and delete
the account (services/account_deletion.py)."""

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs import exports
from jobs.account_forms import AccountDeleteForm
from jobs.security import client_ip
from jobs.selectors import personal_data
from jobs.services import account_deletion


@login_required
@require_GET
def account_data(request):
    """What the studio holds about the person, the button that downloads it, and the way to
    delete the account."""
    summary = personal_data.deletion_summary(user=request.user)
    return render(request, "account/data.html", {"summary": summary})


@login_required
@require_POST
def account_data_export(request):
    """Everything about the person as one .zip, streamed as it is written (exports.py says why
    in the request rather than by email). A POST, so no other site can start one."""
    response = StreamingHttpResponse(
        exports.account_export_stream(user=request.user), content_type="application/zip"
    )
    response["Content-Disposition"] = content_disposition_header(
        True, exports.export_file_name(user=request.user)
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request):
    """GET says what deleting the account does (personal videos go, team videos stay with the
    team, the ledger keeps the costs without the name) and asks for the password, or the
    username for a single sign-on account. POST deletes it, logs out and says it is done."""
    user = request.user
    form = AccountDeleteForm(request.POST or None, request=request)
    refusal = account_deletion.account_deletion_refusal(user=user)
    if request.method == "POST" and not refusal and form.is_valid():
        try:
            done = account_deletion.account_delete(user=user, by=user, address=client_ip(request))
        except account_deletion.AccountDeletionRefused as exc:
            refusal = str(exc)
        else:
            logout(request)
            return render(request, "account/deleted.html", {"done": done})
    context = {
        "form": form,
        "refusal": refusal,
        "summary": personal_data.deletion_summary(user=user),
    }
    return render(request, "account/delete.html", context)
