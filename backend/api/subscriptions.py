"""A site's alert subscriptions (signed webhooks, e-mail) and their delivery log: coordinators of that
site, and administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from backend.api.reads import read, reads
from backend.api.schemas import Command
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import notify, webhook_targets
from backend.settings import Settings

_MANAGERS = policy(Role.COORDINATOR, Role.ADMIN, site_param="site", any_site=(Role.ADMIN,))


class SubscriptionCreate(Command):
    channel: Literal["webhook", "email"]
    # An http(s) URL for a webhook, an address for e-mail.
    target: Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]
    min_severity: Literal["info", "warning", "critical"] = "critical"
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class SubscriptionRead(msgspec.Struct, frozen=True):
    id: int
    site: str
    channel: str
    target: str
    min_severity: str
    description: str
    active: bool
    created_by: str | None
    created_at: datetime
    deactivated_at: datetime | None


class SubscriptionCreated(msgspec.Struct, frozen=True):
    subscription: SubscriptionRead
    # Shown once, at creation: receivers verify X-Celltrail-Signature with it.
    secret: str | None


class DeliveryAttemptRead(msgspec.Struct, frozen=True):
    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryRead(msgspec.Struct, frozen=True):
    id: int
    alert_id: int
    event: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    log: list[DeliveryAttemptRead] = []


class SubscriptionsController(Controller):
    path = "/api/v1/sites/{site:str}/subscriptions"
    tags = ("alerts",)

    @get("/", opt=_MANAGERS, operation_id="listSubscriptions")
    async def list_subscriptions(
        self, site: FromPath[str], pool: NamedDependency[Pool], include_inactive: FromQuery[bool] = False
    ) -> list[SubscriptionRead]:
        return reads(await notify.list_subscriptions(pool, site, include_inactive), SubscriptionRead)

    @post("/", opt=_MANAGERS, operation_id="createSubscription")
    async def create(
        self,
        site: FromPath[str],
        data: JSONBody[SubscriptionCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        settings: NamedDependency[Settings],
    ) -> SubscriptionCreated:
        """Alerts of this site at or above `min_severity` are delivered to `target`. A webhook's secret is
        returned only here: each POST carries `X-Celltrail-Signature: sha256=<HMAC-SHA256 of the body>`.
        A webhook goes to a public address only (422 otherwise) unless CELLTRAIL_WEBHOOK_ALLOW names it;
        the delivery log shows each answer's status code, never its body."""
        created = await notify.create_subscription(
            pool,
            principal,
            site,
            data.channel,
            data.target,
            data.min_severity,
            data.description,
            webhook_targets.allow_list(settings),
        )
        return read(created, SubscriptionCreated)

    @post("/{subscription_id:int}/deactivate", opt=_MANAGERS, operation_id="deactivateSubscription")
    async def deactivate(
        self,
        site: FromPath[str],
        subscription_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> SubscriptionRead:
        """Stop delivering; what is still queued is cancelled, the delivery log stays."""
        stopped = await notify.deactivate_subscription(pool, principal, site, subscription_id)
        return read(stopped, SubscriptionRead)

    @get("/{subscription_id:int}/deliveries", opt=_MANAGERS, operation_id="subscriptionDeliveries")
    async def deliveries(
        self,
        site: FromPath[str],
        subscription_id: FromPath[int],
        pool: NamedDependency[Pool],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[DeliveryRead]:
        """Newest first, each with its attempts (time, outcome, HTTP status, error)."""
        return reads(await notify.delivery_log(pool, site, subscription_id, limit), DeliveryRead)
