"""The studio as an ImageRouter-compatible API (`/v1/`), for scripts with personal API tokens.

A script that speaks ImageRouter's video API works against the studio unchanged but for the base
URL and the key. Its jobs go through the same form rules, job_create, queue, budget hold and
ledger as the web form's, and show in the owner's My videos. See the README's "API" section and
the OpenAPI description served at /v1/openapi.json (openapi.py).
"""
