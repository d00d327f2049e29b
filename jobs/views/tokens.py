"""The API tokens page: a person makes, names, lists and revokes their own personal API tokens."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from jobs import selectors
from jobs.services import tokens as token_services


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What the token is for, so you can tell them apart: “render script on my laptop”.",
        error_messages={"required": "Give the token a name, so you can tell it apart later."},
    )


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    """The list, and the form that makes a token. A new key is shown once, in the answer to the
    POST that made it, and stored nowhere (not in the session, nor in a message cookie), so a
    reload or the Back button cannot show it again."""
    form = ApiTokenForm(request.POST or None)
    new_key = new_token = None
    if request.method == "POST" and form.is_valid():
        new_token, new_key = token_services.token_create(
            user=request.user, name=form.cleaned_data["name"]
        )
        form = ApiTokenForm()
    context = {
        "form": form,
        "tokens": selectors.api_tokens_for_user(user=request.user),
        "new_key": new_key,
        "new_token": new_token,
        "api_base": request.build_absolute_uri("/v1").rstrip("/"),
    }
    response = render(request, "jobs/api_tokens.html", context)
    if new_key:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_token_revoke(request, token_id):
    """Revoke one of the person's own tokens; anyone else's is 404, as if it did not exist."""
    token = selectors.api_tokens_for_user(user=request.user).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    if token_services.token_revoke(user=request.user, token_id=token.pk):
        messages.success(request, f"Revoked “{token.name}”. Requests with it now get 401.")
    else:
        messages.info(request, f"“{token.name}” was already revoked.")
    return redirect("api_tokens")
