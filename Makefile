# VideoStudio. `make run` serves the studio at http://127.0.0.1:8000; `make test` runs every check.
VENV   := .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: run test lint deploy-check superuser install install-dev chromium oidc-provider clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runstudio

# Browser tests drive Debian's Chromium; Playwright's own browser download cannot work offline.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

# The OpenID Connect provider the single sign-on tests sign in at (tests/oidc/provider.mjs),
# from npm at the versions package-lock.json pins; needs Node.js 18.12 or later.
OIDC_PROVIDER := tests/oidc/node_modules/.package-lock.json
$(OIDC_PROVIDER): tests/oidc/package.json tests/oidc/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "The SSO tests need Node.js and npm (apt-get install nodejs npm)."; exit 1; }
	npm ci --prefix tests/oidc --no-audit --no-fund
	@touch $@
oidc-provider: $(OIDC_PROVIDER)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Django's deployment checklist, with the settings a production host gets by default.
deploy-check: install
	DJANGO_ALLOWED_HOSTS=studio.example.com \
	DJANGO_SECRET_KEY=$$($(PY) -c "import secrets; print(secrets.token_urlsafe(50))") \
	  $(PY) manage.py check --deploy --fail-level WARNING

test: install-dev chromium oidc-provider lint deploy-check
	$(VENV)/bin/pytest $(ARGS)

superuser: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createsuperuser

clean:
	rm -rf $(VENV) var test-artifacts tests/oidc/node_modules
