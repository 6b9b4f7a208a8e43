"""Outbound webhooks never reach the platform's own network in production: a payee's
webhook_url on a loopback, private or link-local address fails without a request."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from kernel.db import session_scope
from kernel.outbound import WebhookDelivery, attempt_delivery, non_public_destination
from kernel.settings import Settings
from tests.conftest import Backend, WebhookReceiver


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://192.168.0.7/"])
def test_loopback_private_and_link_local_destinations_are_named_as_refused(url: str) -> None:
    assert (non_public_destination(url) or "").startswith("refused:")


def test_a_public_address_is_not_refused() -> None:
    assert non_public_destination("https://93.184.215.14/hooks") is None


def test_a_delivery_to_a_private_address_fails_for_good_without_a_request_when_not_allowed(
    env: Backend, webhook_receiver: str
) -> None:
    with session_scope(env.runtime.sessions) as session:  # the row `emit` writes, without its task
        delivery = WebhookDelivery(recipient_type="seller", recipient_id=uuid.uuid4(), url=webhook_receiver,
                                   event_type="order.created", payload={"type": "order.created"})
        session.add(delivery)
        session.flush()
        delivered = attempt_delivery(session, delivery, "secret", allow_private_hosts=False)
        assert (delivered, delivery.status, delivery.next_attempt_at) == (False, "failed", None)
        assert delivery.last_error is not None and "non-public address (127.0.0.1)" in delivery.last_error
    assert WebhookReceiver.received == []


def test_private_webhook_hosts_are_refused_by_default_in_production_only() -> None:
    production = {"environment": "production", "database_url": "postgresql+psycopg://db/x",
                  "webhook_signing_secret": "a-real-secret-for-this-test", "metrics_token": "scrape"}
    assert Settings(**production).webhooks_may_reach_private_hosts is False  # type: ignore[arg-type]
    assert Settings(**production, webhook_allow_private_hosts=True).webhooks_may_reach_private_hosts  # type: ignore[arg-type]
    assert Settings(environment="development", database_url="sqlite:///./x.db").webhooks_may_reach_private_hosts


def test_the_delivery_task_applies_the_setting(
    env: Backend, webhook_receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernel.tasking import installed_celery

    monkeypatch.setattr(env.runtime.settings, "webhook_allow_private_hosts", False)
    with session_scope(env.runtime.sessions) as session:
        delivery = WebhookDelivery(recipient_type="seller", recipient_id=uuid.uuid4(), url=webhook_receiver,
                                   event_type="order.created", payload={"type": "order.created"})
        session.add(delivery)
        session.flush()
        delivery_id = delivery.id

    assert installed_celery().tasks["webhooks.deliver"].apply(args=(str(delivery_id),)).get() == "failed"
    assert WebhookReceiver.received == []


def test_setting_a_private_webhook_url_is_a_422_where_deliveries_would_refuse_it(
    client: TestClient, env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    seller = client.post("/v1/sellers", json={"name": "Acme", "email": "acme-hooks@sellers.example"}).json()
    affiliate = client.post("/v1/affiliates", json={"name": "Guild", "email": "guild-hooks@partners.example",
                                                    "audience": "makers"}).json()
    seller_key = {"Authorization": f"Bearer {seller['api_key']}"}
    affiliate_key = {"Authorization": f"Bearer {affiliate['api_key']}"}
    private = {"webhook_url": "http://169.254.169.254/latest/meta-data"}
    assert client.patch("/v1/sellers/me", headers=seller_key, json=private).status_code == 200  # allowed here

    monkeypatch.setattr(env.runtime.settings, "webhook_allow_private_hosts", False)
    for path, headers in (("/v1/sellers/me", seller_key), ("/v1/affiliates/me", affiliate_key)):
        refused = client.patch(path, headers=headers, json=private)
        assert refused.status_code == 422, refused.text
        assert "non-public address (169.254.169.254)" in refused.json()["detail"]
    assert client.get("/v1/affiliates/me", headers=affiliate_key).json()["webhook_url"] is None  # nothing saved
    assert client.patch("/v1/sellers/me", headers=seller_key, json={"webhook_url": None}).status_code == 200
