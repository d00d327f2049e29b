"""The notification-settings page (/account/notifications/): what the studio emails a person
about. Each person sees and changes only their own choices."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms.models import model_to_dict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from jobs.alert_forms import AlertPreferencesForm
from jobs.selectors import alerts as alert_selectors
from jobs.services import alert_preferences_save


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request):
    offer = alert_selectors.alert_offer_for(request.user)
    preferences = alert_selectors.alert_preferences_for(request.user)
    form = AlertPreferencesForm(
        request.POST or None, offer=offer, initial=model_to_dict(preferences)
    )
    if request.method == "POST" and form.is_valid():
        alert_preferences_save(user=request.user, choices=form.cleaned_data)
        messages.success(request, "Your notification settings are saved.")
        return redirect("notification_settings")
    return render(
        request,
        "jobs/notification_settings.html",
        {"form": form, "offer": offer, "email": request.user.email},
    )
