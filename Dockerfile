FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home studio && mkdir -p var && chown -R studio var \
    && python manage.py collectstatic --noinput
USER studio

EXPOSE 8000
CMD ["gunicorn", "videostudio.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4"]
