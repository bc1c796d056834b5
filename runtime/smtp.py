"""smtp_alert: e-mail on VRRP transitions and real-server checks, sent with smtplib in a worker thread.

The message follows keepalived's shape: subject `[router_id] VRRP Instance NAME - Entering STATE
state`, body naming the new state. Failures are logged and counted; they never block the loop.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from hacc.runtime.spec import SmtpSettings

log = logging.getLogger("hacc.smtp")

_BODY = {
    "MASTER": "=> VRRP Instance is now owning VRRP VIPs <=",
    "BACKUP": "=> VRRP Instance is nolonger owning VRRP VIPs <=",
    "FAULT": "=> VRRP Instance is nolonger owning VRRP VIPs <=",
    "STOP": "=> VRRP Instance is stopped <=",
}


def _message(settings: SmtpSettings, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.sender or f"keepalived@{settings.router_id}"
    msg["To"] = ", ".join(settings.recipients)
    msg["Subject"] = f"[{settings.router_id}] {subject}"
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=settings.router_id or None)
    msg.set_content(body + "\n")
    return msg


def alert_message(settings: SmtpSettings, name: str, state: str) -> EmailMessage:
    body = _BODY.get(state, f"=> VRRP Instance is now in {state} state <=")
    return _message(settings, f"VRRP Instance {name} - Entering {state} state", body)


def checker_message(settings: SmtpSettings, real_server: str, service: str, up: bool, reason: str) -> EmailMessage:
    """keepalived's checker alert: `[router_id] Realserver ADDR:PORT of SERVICE - UP|DOWN`."""
    subject = f"Realserver {real_server} of {service} - {'UP' if up else 'DOWN'}"
    return _message(settings, subject, f"=> {'CHECK succeed' if up else 'CHECK failed'} on service: {reason} <=")


def send_alert_blocking(settings: SmtpSettings, msg: EmailMessage) -> None:
    with smtplib.SMTP(
        settings.server,
        settings.port,
        local_hostname=settings.helo_name,
        timeout=settings.connect_timeout,
    ) as client:
        client.send_message(msg)


class SmtpAlerter:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.sent = 0
        self.failures = 0
        self._tasks: set[asyncio.Future[None]] = set()

    def alert(self, name: str, state: str) -> None:
        self._queue(alert_message(self.settings, name, state), name)

    def alert_checker(self, real_server: str, service: str, up: bool, reason: str) -> None:
        self._queue(checker_message(self.settings, real_server, service, up, reason), real_server)

    def _queue(self, msg: EmailMessage, name: str) -> None:
        if not self.settings.recipients:
            return
        fut = asyncio.ensure_future(self._send(msg, name))
        self._tasks.add(fut)
        fut.add_done_callback(self._tasks.discard)

    async def _send(self, msg: EmailMessage, name: str) -> None:
        try:
            await asyncio.to_thread(send_alert_blocking, self.settings, msg)
        except (OSError, smtplib.SMTPException) as exc:
            self.failures += 1
            log.warning("[%s] smtp_alert to %s failed: %s", name, self.settings.server, exc)
            return
        self.sent += 1

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
