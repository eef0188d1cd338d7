"""The security monitor (policy §12), on the real database and through real HTTP: each
trigger (failed sign-ins, permission denials, WhatsApp signature failures, customers
exported or erased) raises one alert per window, e-mailed to the owners and audited,
and a second run raises nothing again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cybergine.accounts.models import Role
from cybergine.channels.whatsapp.simulator import webhook_request
from cybergine.db.engine import Database
from cybergine.jobs import APP
from cybergine.privacy.audit import AuditEvent
from cybergine.security import monitor
from cybergine.security.models import AlertKind, SecurityAlert
from cybergine.security.triggers import ALERT_ACTION
from cybergine.settings import Settings
from tests.support.browser import Browser
from tests.support.conversations import make_customer, make_whatsapp_number
from tests.support.factories import add_member, make_api_key, make_organisation
from tests.support.mailbox import emails_to
from tests.support.server import LiveServer


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "security_alert_window_minutes": 60,
            "security_alert_failed_sign_ins": 3,
            "security_alert_permission_denials": 3,
            "security_alert_signature_failures": 6,
            "security_alert_exports_and_erasures": 3,
        }
    )


async def _run(database: Database, settings: Settings) -> list[monitor.RaisedAlert]:
    async with database.transaction() as session:
        return await monitor.raise_alerts(session, settings)


async def _alert_entries(database: Database, organisation_id: uuid.UUID) -> list[AuditEvent]:
    async with database.transaction() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.action == ALERT_ACTION,
                    AuditEvent.organisation_id == organisation_id,
                )
                .order_by(AuditEvent.seq)
            )
        )


async def _raised_once(
    database: Database, settings: Settings, kind: AlertKind, owner_email: str
) -> monitor.RaisedAlert:
    """Runs the monitor twice: one alert of ``kind`` the first time, e-mailed to the
    owner and audited; nothing the second time."""
    raised = [alert for alert in await _run(database, settings) if alert.kind is kind]
    assert len(raised) == 1, raised
    (alert,) = raised
    assert alert.recipients == [owner_email]
    (email,) = await emails_to(database, owner_email)
    assert email.subject.startswith("Security alert:")
    entries = await _alert_entries(database, alert.organisation_id)
    assert [(e.target_id, e.details["kind"]) for e in entries] == [(str(alert.id), kind.value)]
    assert entries[0].details["count"] == alert.count

    assert await _run(database, settings) == []  # the same window: not again
    assert len(await emails_to(database, owner_email)) == 1
    assert len(await _alert_entries(database, alert.organisation_id)) == 1
    return alert


async def test_failed_sign_ins_to_an_account_alert_its_organisations_owners(
    browser: Browser, database: Database, settings: Settings
) -> None:
    organisation, owner = await make_organisation(database)
    agent, _ = await add_member(database, organisation.id, Role.AGENT)
    colleague, _ = await add_member(database, organisation.id, Role.AGENT)
    for _ in range(4):
        assert "do not match" in browser.sign_in(agent.email, "wrong password").text
    for _ in range(2):  # below the threshold
        browser.sign_in(colleague.email, "wrong password")
    for _ in range(5):  # an address of no one: nobody to alert
        browser.sign_in("nobody@example.com", "wrong password")

    alert = await _raised_once(database, settings, AlertKind.FAILED_SIGN_INS, owner.email)
    assert (alert.organisation_id, alert.subject_id, alert.count) == (
        organisation.id,
        agent.id,
        4,
    )
    (email,) = await emails_to(database, owner.email)
    assert agent.email not in (email.body_text or "")  # ids only


async def test_permission_denials_alert_the_owners(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    organisation, owner = await make_organisation(database)
    key = await make_api_key(database, organisation.id, Role.VIEWER)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        for _ in range(2):
            assert api.post("/api/v1/assistants", json={"name": "Mia"}).status_code == 403
        assert await _run(database, settings) == []  # two: below the threshold
        assert api.post("/api/v1/assistants", json={"name": "Mia"}).status_code == 403

    alert = await _raised_once(database, settings, AlertKind.PERMISSION_DENIALS, owner.email)
    assert (alert.organisation_id, alert.subject_id, alert.count) == (organisation.id, None, 3)


async def test_whatsapp_signature_failures_alert_the_owners(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    organisation, owner = await make_organisation(database)
    async with database.transaction() as session:
        number = await make_whatsapp_number(session, organisation.id, app_secret="the-real-one")
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": number.waba_id,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550100200",
                                "phone_number_id": number.phone_number_id,
                            },
                            "statuses": [],
                        },
                    }
                ],
            }
        ],
    }
    raw, headers = webhook_request(body, "a-guessed-secret")
    with live_server.client() as client:
        for _ in range(6):
            response = client.post("/webhooks/whatsapp", content=raw, headers=headers)
            assert response.status_code == 401, response.text

    alert = await _raised_once(database, settings, AlertKind.SIGNATURE_FAILURES, owner.email)
    assert (alert.organisation_id, alert.subject_id, alert.count) == (
        organisation.id,
        number.id,
        6,
    )


async def test_customers_exported_and_erased_in_a_burst_alert_the_owners(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    organisation, owner = await make_organisation(database)
    other, other_owner = await make_organisation(database, name="Other")
    key = await make_api_key(database, organisation.id)
    async with database.transaction() as session:
        customers = [await make_customer(session, organisation.id) for _ in range(2)]
        await make_customer(session, other.id)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        for customer in customers:
            exported = api.get(f"/api/v1/customers/{customer.id}/export")
            assert exported.status_code == 200, exported.text
        assert await _run(database, settings) == []
        erased = api.delete(f"/api/v1/customers/{customers[0].id}")
        assert erased.status_code == 200, erased.text

    alert = await _raised_once(database, settings, AlertKind.EXPORTS_AND_ERASURES, owner.email)
    assert (alert.organisation_id, alert.count) == (organisation.id, 3)
    assert await emails_to(database, other_owner.email) == []


async def test_a_burst_alerts_once_per_window(database: Database, settings: Settings) -> None:
    """The windows are fixed: a run in the next window does not see the last one's burst
    twice, and each alert row is unique per window."""
    now = datetime(2026, 3, 2, 10, 7, tzinfo=UTC)
    windows = monitor.windows_to_check(now, 60)
    assert [(w.start.hour, w.end.hour) for w in windows] == [(9, 10), (10, 11)]
    assert monitor.windows_to_check(now + timedelta(minutes=53), 60)[1].start.hour == 11

    organisation, _ = await make_organisation(database)
    async with database.transaction() as session:
        values = {
            "organisation_id": organisation.id,
            "kind": AlertKind.PERMISSION_DENIALS.value,
            "subject_id": None,
            "window_start": windows[1].start,
            "window_end": windows[1].end,
            "count": 5,
            "threshold": 3,
        }
        session.add(SecurityAlert(**values))
    with pytest.raises(Exception, match="uq_security_alerts"):
        async with database.transaction() as session:
            session.add(SecurityAlert(**values))  # the same window, subject none: refused


def test_the_monitor_is_a_periodic_job() -> None:
    periodic = {name for name, _ in APP.periodic_registry.periodic_tasks}
    assert "security:raise_alerts" in periodic
