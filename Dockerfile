# One image for every part of the studio: the web (the default command), the worker host
# (`python manage.py runworker`), beat and the simulator; docker-compose.yml runs each. It has no
# HEALTHCHECK of its own, since each of those is checked differently (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Prometheus' multi-process mode: every process of a container writes its metrics here, and one
# scrape adds them up. gunicorn (gunicorn.conf.py) and runworker empty it when they start.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/videostudio-metrics
WORKDIR /app

# Dependencies first, so that a code change rebuilds only the layers below.
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --create-home --uid 10001 studio
COPY . .
# Static files are gathered at build: settings need no database, Redis or secret to import
# (no DJANGO_ALLOWED_HOSTS here means loopback defaults), and .env is never copied in.
# var/ is the studio's: media (docker compose mounts a volume there, which takes this folder's
# owner when it is first created), the SQLite database when there is no DATABASE_URL.
RUN python manage.py collectstatic --noinput \
    && mkdir -p var/media \
    && chown -R studio:studio var
USER studio

EXPOSE 8000
CMD ["gunicorn", "videostudio.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4"]
