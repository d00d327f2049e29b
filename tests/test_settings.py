"""Settings come from the environment, and .env.example documents every variable they read."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_with_settings, settings_variables

ROOT = Path(__file__).resolve().parents[1]


def example_variables() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z_]+=", line)}


def test_env_example_lists_exactly_the_variables_settings_read():
    assert settings_variables() == example_variables()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "studio.example.com"}, "Set DJANGO_SECRET_KEY"),
        (
            {
                "DJANGO_ALLOWED_HOSTS": "studio.example.com",
                "DJANGO_SECRET_KEY": "k" * 50,
                "DJANGO_DEBUG": "true",
            },
            "DJANGO_DEBUG must be false",
        ),
        ({"DJANGO_DEBUG": "yes"}, "must be 'true' or 'false'"),
        ({"OIDC_ISSUER": "https://sso.example.com"}, "set OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"),
        (
            {"OIDC_ISSUER": "sso.example.com", "OIDC_CLIENT_ID": "a", "OIDC_CLIENT_SECRET": "b"},
            "OIDC_ISSUER must be an http(s) URL",
        ),
        ({"PASSWORD_LOGIN": "false"}, "PASSWORD_LOGIN=false needs OIDC_ISSUER"),
        (
            {
                "PASSWORD_LOGIN": "false",
                "OIDC_ISSUER": "https://sso.example.com",
                "OIDC_CLIENT_ID": "a",
                "OIDC_CLIENT_SECRET": "b",
            },
            "needs BREAK_GLASS_USERNAME",
        ),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(env, message):
    completed = run_with_settings(**env)
    assert completed.returncode != 0
    assert message in completed.stderr


def test_a_real_host_with_a_real_key_starts():
    completed = run_with_settings(
        DJANGO_ALLOWED_HOSTS="studio.example.com", DJANGO_SECRET_KEY="k" * 50
    )
    assert completed.returncode == 0, completed.stderr


def test_without_a_key_the_studio_talks_to_the_simulator():
    completed = run_with_settings(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SIMULATOR_MODE, s.IMAGEROUTER_BASE_URL)",
        check=True,
    )
    assert completed.stdout.split() == ["True", "http://127.0.0.1:8765"]


PRODUCTION = {
    "DJANGO_ALLOWED_HOSTS": "studio.example.com",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
}


def deploy_check(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IMAGEROUTER_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_deploy_check_passes_with_production_settings():
    """A real host name turns on HTTPS redirects, secure cookies and HSTS by default."""
    completed = deploy_check(**PRODUCTION)
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize(
    ("switch", "warning"),
    [
        ({"DJANGO_SECURE_COOKIES": "false"}, "security.W012"),
        ({"DJANGO_SECURE_SSL_REDIRECT": "false"}, "security.W008"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "0"}, "security.W004"),
    ],
)
def test_the_deploy_check_fails_when_an_operator_turns_a_protection_off(switch, warning):
    completed = deploy_check(**PRODUCTION, **switch)
    assert completed.returncode != 0
    assert warning in completed.stdout + completed.stderr
