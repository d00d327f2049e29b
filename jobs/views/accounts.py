"""Signing up, logging in, and the account's email: verification at sign-up, the password reset
(Django's own views with the studio's forms), and changing one's address."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs import selectors
from jobs.account_forms import (
    EmailChangeForm,
    LoginForm,
    NewPasswordForm,
    PasswordResetRequestForm,
    SignupForm,
)
from jobs.services import accounts

SIGNUP_EMAIL_SESSION_KEY = "signup_email"


@require_GET
def home(request):
    return redirect("jobs:create" if request.user.is_authenticated else "login")


def _sign_in_context() -> dict:
    """What the log-in and sign-up pages offer: the single sign-on button (when OIDC_ISSUER is
    set) and whether passwords are for everyone (PASSWORD_LOGIN)."""
    return {
        "sso_button_label": settings.OIDC_BUTTON_LABEL if settings.OIDC_ISSUER else "",
        "password_login": settings.PASSWORD_LOGIN,
    }


class StudioAuthenticationForm(LoginForm):
    """The log-in form (it knows unconfirmed addresses), refusing every password but the
    break-glass account's while PASSWORD_LOGIN=false."""

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            if settings.PASSWORD_LOGIN:
                raise
            # One message for every refusal, the break-glass account's wrong password included,
            # so the page does not tell which username is the break-glass one.
            raise forms.ValidationError(
                f"Password log-in is turned off in this studio. Use “{settings.OIDC_BUTTON_LABEL}” "
                f"instead.",
                code="password_login_off",
            ) from None


class StudioLoginView(auth_views.LoginView):
    """Django's log-in view with the single sign-on button. With PASSWORD_LOGIN=false the page
    shows only the button; the password form is still served at ?password for the break-glass
    staff account, and still answers a POST from anyone, with a refusal for all but that one."""

    authentication_form = StudioAuthenticationForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs) | _sign_in_context()
        context["show_password_form"] = (
            settings.PASSWORD_LOGIN
            or "password" in self.request.GET
            or self.request.method == "POST"
        )
        return context


@require_http_methods(["GET", "POST"])
def signup(request):
    if not settings.PASSWORD_LOGIN:
        # Accounts are made by the first single sign-on; nothing posted here is saved.
        return render(request, "registration/signup_off.html", _sign_in_context(), status=403)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if settings.SIGNUP_EMAIL_VERIFICATION:
            with transaction.atomic():
                user = form.save()
                accounts.signup_verification_start(user=user)
            request.session[SIGNUP_EMAIL_SESSION_KEY] = user.email
            return redirect("signup_sent")
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("jobs:create")
    return render(request, "registration/signup.html", {"form": form} | _sign_in_context())


@require_GET
def signup_sent(request):
    return render(
        request,
        "registration/signup_sent.html",
        {"email": request.session.get(SIGNUP_EMAIL_SESSION_KEY, "")},
    )


@require_http_methods(["GET", "POST"])
def signup_verify(request, token):
    """GET shows what the link confirms and a button; POST confirms. A mail scanner that opens
    links (as some companies' do) therefore confirms nothing on its own."""
    try:
        if request.method == "POST":
            verification = accounts.signup_verify(token=token)
            if not verification.already_done:
                messages.success(request, "Your email address is confirmed. You can log in now.")
                return redirect("login")
        else:
            verification = accounts.signup_verification_read(token=token)
    except accounts.LinkError as error:
        return render(request, "registration/signup_verify.html", {"error": str(error)})
    return render(request, "registration/signup_verify.html", {"verification": verification})


@require_POST
def signup_verify_resend(request):
    accounts.signup_verification_resend(resend_token=request.POST.get("resend", ""))
    # The same answer whether or not a message went: the address's hourly share may be used.
    messages.info(
        request,
        "If your account still waits for its address, a new link is on its way. "
        "It can take a few minutes; check your spam folder too.",
    )
    return redirect("login")


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetRequestForm


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = NewPasswordForm


@login_required
@require_http_methods(["GET", "POST"])
def account_email(request):
    user = request.user
    form = EmailChangeForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        new_email = form.cleaned_data["email"]
        if accounts.email_change_request(user=user, new_email=new_email):
            messages.success(
                request,
                f"We sent a link to {new_email}. Your address stays "
                f"{user.email or '(none)'} until you open it.",
            )
            return redirect("account_email")
        form.add_error(
            "email",
            f"We already sent {settings.ACCOUNT_EMAILS_PER_HOUR} links to that address this "
            "hour. Use one of them, or try again in an hour.",
        )
    return render(
        request,
        "account/email.html",
        {"form": form, "verified": selectors.email_is_verified(user=user)},
    )


@require_http_methods(["GET", "POST"])
def account_email_confirm(request, token):
    """The link sent to a new address. GET shows the change and a button; POST applies it. It
    needs no log-in: the link itself proves the person reads the new address."""
    try:
        if request.method == "POST":
            change = accounts.email_change_confirm(token=token)
            return render(request, "account/email_confirm.html", {"change": change, "done": True})
        change = accounts.email_change_read(token=token)
    except accounts.LinkError as error:
        return render(request, "account/email_confirm.html", {"error": str(error)})
    return render(request, "account/email_confirm.html", {"change": change})
