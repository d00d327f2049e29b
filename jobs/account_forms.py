"""Forms for accounts: sign-up, log-in that knows about unconfirmed addresses, the password reset
through the outbox, and changing one's address. Django's own forms, with the studio's rules."""

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordResetForm,
    SetPasswordForm,
    UserCreationForm,
)
from django.core.exceptions import ValidationError

from jobs import selectors
from jobs.security import password_login_allowed
from jobs.services import accounts


class SignupForm(UserCreationForm):
    """A username, an email address and a password. The address is required when sign-up
    waits for it to be confirmed (SIGNUP_EMAIL_VERIFICATION), optional otherwise (without one a
    forgotten password cannot be reset by email), and unique among accounts whatever its case."""

    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        verification = settings.SIGNUP_EMAIL_VERIFICATION
        self.fields["email"].required = verification
        self.fields["email"].help_text = (
            "We will send a link to it: open it to finish creating your account."
            if verification
            else "Optional. Without one, a forgotten password cannot be reset by email."
        )

    def clean_email(self):
        email = BaseUserManager.normalize_email(self.cleaned_data["email"].strip())
        if email and accounts.email_in_use(address=email):
            raise forms.ValidationError("Another account uses that address.")
        return email


class LoginForm(AuthenticationForm):
    """Django's log-in form. With sign-up verification on, an account whose address is not
    confirmed yet is refused after its password was checked (so only its owner learns why), and
    the page offers to send the link again (`resend_token` says for whom, for a few minutes)."""

    unverified_user = None

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if selectors.signup_waits_for_verification(user=user):
            self.unverified_user = user
            raise ValidationError(
                f"Confirm your email address first: we sent a link to {user.email} when you "
                "signed up. Open it to finish creating your account.",
                code="unverified",
            )

    @property
    def resend_token(self) -> str:
        return accounts.signup_resend_token(user=self.unverified_user)


class PasswordResetRequestForm(PasswordResetForm):
    """Django's reset form, sending through the outbox. Every address gets the same answer (the
    view says "if an account uses this address..."), and one address gets at most
    ACCOUNT_EMAILS_PER_HOUR links an hour, whoever asks."""

    def get_users(self, email):
        """With PASSWORD_LOGIN=false only the break-glass account may reset a password: everyone
        else signs in through the identity provider, where their password lives."""
        return (user for user in super().get_users(email) if password_login_allowed(user.username))

    def save(self, **kwargs):
        if not accounts.account_email_allowed(address=self.cleaned_data["email"]):
            return  # the same answer as always; nothing more lands in that inbox this hour
        super().save(**kwargs)

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        accounts.password_reset_email_queue(
            user=context["user"], uid=context["uid"], token=context["token"]
        )


class NewPasswordForm(SetPasswordForm):
    """The form behind a reset link. Following that link proved the person reads the account's
    address, so the address counts as confirmed from now on."""

    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit and user.email:
            accounts.account_email_verified(user=user)
        return user


class EmailChangeForm(forms.Form):
    """A new address, and the password to prove the person at the keyboard owns the account."""

    email = forms.EmailField(
        label="New email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, request, **kwargs):
        self.request = request
        self.user = request.user
        super().__init__(*args, **kwargs)

    def clean_email(self):
        email = BaseUserManager.normalize_email(self.cleaned_data["email"].strip())
        if email.lower() == (self.user.email or "").lower():
            raise ValidationError("That is already your address.")
        if accounts.email_in_use(address=email, exclude_user=self.user):
            raise ValidationError("Another account uses that address.")
        return email

    def clean_password(self):
        # Through authenticate(), so django-axes counts wrong passwords here as at log-in and
        # pauses this username and address after LOGIN_FAILURE_LIMIT of them.
        password = self.cleaned_data["password"]
        checked = authenticate(self.request, username=self.user.get_username(), password=password)
        if checked is None or checked.pk != self.user.pk:
            raise ValidationError("That is not your password.")
        return password


class AccountDeleteForm(forms.Form):
    """The proof that the person at the keyboard means to delete the account: their password, or,
    for an account that does not log in with one (single sign-on), their username typed out."""

    def __init__(self, *args, request, **kwargs):
        self.request = request
        self.user = request.user
        super().__init__(*args, **kwargs)
        if self.asks_password:
            self.fields["password"] = forms.CharField(
                label="Your password",
                strip=False,
                widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
            )
        else:
            self.fields["username"] = forms.CharField(
                label=f"Type your username, {self.user.get_username()}, to confirm",
                widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
            )

    @property
    def asks_password(self) -> bool:
        return self.user.has_usable_password() and password_login_allowed(self.user.get_username())

    def clean_password(self):
        # Through authenticate(), so django-axes counts wrong passwords here as at log-in.
        password = self.cleaned_data["password"]
        checked = authenticate(self.request, username=self.user.get_username(), password=password)
        if checked is None or checked.pk != self.user.pk:
            raise ValidationError("That is not your password. Nothing was deleted.")
        return password

    def clean_username(self):
        typed = self.cleaned_data["username"].strip()
        if typed != self.user.get_username():
            raise ValidationError(
                f"That is not your username: type {self.user.get_username()} exactly. "
                "Nothing was deleted."
            )
        return typed
