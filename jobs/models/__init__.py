"""The studio's models, one module per topic; everything is importable from jobs.models."""

from .accounts import AccountEmail, AlertPreferences, ExternalIdentity
from .audit import AuditEvent, AuditEventImmutableError, audit_quote
from .budgets import Budget, BudgetNotice, BudgetShare, HeldTotal, SpendDay, spend_scope
from .catalog import VideoModel
from .files import StorageTotal, StoredFileDeletion
from .groups import JobGroup
from .jobs import CostEntry, Job, Notice, SubmitKey
from .outbound import AlertHook, OutgoingEmail, WebhookAttempt, WebhookDelivery
from .provider_keys import ProviderKey
from .rollups import LedgerDay, LedgerUserSpan
from .teams import Membership, Team
from .tokens import ApiToken

__all__ = [
    "AccountEmail",
    "AlertHook",
    "AlertPreferences",
    "ApiToken",
    "AuditEvent",
    "AuditEventImmutableError",
    "Budget",
    "BudgetNotice",
    "BudgetShare",
    "CostEntry",
    "ExternalIdentity",
    "HeldTotal",
    "Job",
    "JobGroup",
    "LedgerDay",
    "LedgerUserSpan",
    "Membership",
    "Notice",
    "OutgoingEmail",
    "ProviderKey",
    "SpendDay",
    "StorageTotal",
    "StoredFileDeletion",
    "SubmitKey",
    "Team",
    "VideoModel",
    "WebhookAttempt",
    "WebhookDelivery",
    "audit_quote",
    "spend_scope",
]
