from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from jobs.forms import SignupForm


@require_GET
def home(request):
    return redirect("jobs:create" if request.user.is_authenticated else "login")


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("jobs:create")
    return render(request, "registration/signup.html", {"form": form})
