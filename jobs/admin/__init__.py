"""The admin, one module per topic. Importing them registers every model."""

from . import audit, budgets, jobs, outbound, provider_keys, teams, tokens, users

__all__ = ["audit", "budgets", "jobs", "outbound", "provider_keys", "teams", "tokens", "users"]
