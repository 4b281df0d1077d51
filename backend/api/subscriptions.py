"""A site's alert subscriptions (signed webhooks, e-mail) and their delivery log: coordinators of that
site, and administrators."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from backend.api.schemas import Command
from backend.db.repo.subscriptions import DeliveryRow, SubscriptionRow
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import notify, webhook_targets
from backend.services.notify import CreatedSubscription
from backend.settings import Settings

_MANAGERS = policy(Role.COORDINATOR, Role.ADMIN, site_param="site", any_site=(Role.ADMIN,))


class SubscriptionCreate(Command):
    channel: Literal["webhook", "email"]
    # An http(s) URL for a webhook, an address for e-mail.
    target: Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]
    min_severity: Literal["info", "warning", "critical"] = "critical"
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class SubscriptionsController(Controller):
    path = "/api/v1/sites/{site:str}/subscriptions"
    tags = ("alerts",)

    @get("/", opt=_MANAGERS, operation_id="listSubscriptions")
    async def list_subscriptions(
        self, site: FromPath[str], pool: NamedDependency[Pool], include_inactive: FromQuery[bool] = False
    ) -> list[SubscriptionRow]:
        return await notify.list_subscriptions(pool, site, include_inactive)

    @post("/", opt=_MANAGERS, operation_id="createSubscription")
    async def create(
        self,
        site: FromPath[str],
        data: JSONBody[SubscriptionCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        settings: NamedDependency[Settings],
    ) -> CreatedSubscription:
        """Alerts of this site at or above `min_severity` are delivered to `target`. A webhook's secret is
        returned only here: each POST carries `X-Celltrail-Signature: sha256=<HMAC-SHA256 of the body>`.
        A webhook goes to a public address only (422 otherwise) unless CELLTRAIL_WEBHOOK_ALLOW names it;
        the delivery log shows each answer's status code, never its body."""
        return await notify.create_subscription(
            pool,
            principal,
            site,
            data.channel,
            data.target,
            data.min_severity,
            data.description,
            webhook_targets.allow_list(settings),
        )

    @post("/{subscription_id:int}/deactivate", opt=_MANAGERS, operation_id="deactivateSubscription")
    async def deactivate(
        self,
        site: FromPath[str],
        subscription_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> SubscriptionRow:
        """Stop delivering; what is still queued is cancelled, the delivery log stays."""
        return await notify.deactivate_subscription(pool, principal, site, subscription_id)

    @get("/{subscription_id:int}/deliveries", opt=_MANAGERS, operation_id="subscriptionDeliveries")
    async def deliveries(
        self,
        site: FromPath[str],
        subscription_id: FromPath[int],
        pool: NamedDependency[Pool],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[DeliveryRow]:
        """Newest first, each with its attempts (time, outcome, HTTP status, error)."""
        return await notify.delivery_log(pool, site, subscription_id, limit)
