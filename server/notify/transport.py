"""Sending one message to one channel URL: JSON webhooks by our own code, everything else by apprise.

apprise follows redirects unless told otherwise, resolves names itself and reads whole responses,
so json:// and jsons:// webhooks (whose target anyone managing channels chooses) are posted here
instead: the name is resolved and checked (netcheck), the connection goes to the checked address
(the name is kept for the Host header, SNI and the certificate check), redirects are not followed,
every socket operation and the whole exchange have a timeout, and at most MAX_RESPONSE_BYTES of the
answer are read. Every other scheme goes through apprise with redirects off and the timeouts set;
where it connects is channels.SCHEMES' business: a host the URL chose (bark's server, an SMTP
server, ...) is resolved and checked just before sending, and while apprise sends, name lookups
answer only that host, with the checked addresses, or the vendor's fixed names (netcheck.pinned).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from urllib.parse import urlencode

import apprise
import urllib3

from server.notify import netcheck
from server.notify.channels import (
    MARKDOWN_SCHEMES,
    WEBHOOK_SCHEMES,
    ChannelError,
    instantiate,
    reachable,
    scheme_of,
    scrub,
    target_host,
)
from server.notify.messages import Message, md

TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "MiWei-collector"


class DeliveryError(Exception):
    """A message was not delivered; the text never holds the URL's secrets."""


class Transport:
    """Delivers messages; one per collector process, shared by the sender thread and the API."""

    def __init__(self, allow_private: bool, timeout_s: float = TIMEOUT_S, max_response_bytes: int = MAX_RESPONSE_BYTES):
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._apprise_lock = threading.Lock()  # apprise's log capture is process-wide: one send at a time

    def deliver(self, url: str, message: Message) -> None:
        """Send, or raise DeliveryError with a redacted reason."""
        try:
            if scheme_of(url) in WEBHOOK_SCHEMES:
                self._post_json(url, message)
            else:
                self._apprise(url, message)
        except DeliveryError as exc:
            raise DeliveryError(scrub(str(exc), url)) from None
        except (ChannelError, netcheck.TargetRefused) as exc:
            raise DeliveryError(scrub(f"refused: {exc}", url)) from None
        except Exception as exc:  # a library error: its text may quote the URL
            raise DeliveryError(scrub(f"{type(exc).__name__}: {exc}", url)[:500]) from None

    # --- JSON webhooks -------------------------------------------------------------------------

    def _post_json(self, url: str, message: Message) -> None:
        plugin = instantiate(url)
        host, port = target_host(url, plugin)
        target = netcheck.check_target(host, port, self.allow_private)
        secure = scheme_of(url) == "jsons"
        path = plugin.fullpath or "/"
        if plugin.params:
            path += "?" + urlencode(plugin.params)
        default_port = 443 if secure else 80
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json; charset=utf-8",
            "Host": host if port == default_port else f"{host}:{port}",
            **{k: v for k, v in plugin.headers.items() if k.lower() not in ("host", "content-length")},
        }
        if plugin.user:
            creds = f"{plugin.user}:{plugin.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(creds).decode("ascii")
        body = json.dumps(
            {
                "version": "1.0",
                "title": message.title,
                "message": message.text,
                "type": "warning",
                "miwei": message.data,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        last: Exception | None = None
        for address in target.addresses[:4]:
            try:
                status = self._post_to(address, port, secure, host, path, headers, body)
            except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
                last = exc  # the next address may answer
                continue
            if 200 <= status < 300:
                return
            if 300 <= status < 400:
                raise DeliveryError(f"HTTP {status} from {host}: redirects are not followed")
            raise DeliveryError(f"HTTP {status} from {host}")
        raise DeliveryError(f"cannot connect to {host}:{port}: {type(last).__name__ if last else 'no address'}")

    def _post_to(self, address: str, port: int, secure: bool, host: str, path: str, headers: dict, body: bytes) -> int:
        timeout = urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s)
        if secure:
            pool = urllib3.HTTPSConnectionPool(
                address, port, timeout=timeout, retries=False, maxsize=1,
                server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED",
            )  # fmt: skip
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)
        deadline = time.monotonic() + 3 * self.timeout_s
        try:
            response = pool.urlopen(
                "POST", path, body=body, headers=headers, redirect=False, retries=False,
                preload_content=False, assert_same_host=False,
            )  # fmt: skip
            try:
                read = 0
                while read < self.max_response_bytes and time.monotonic() < deadline:
                    chunk = response.read(min(8192, self.max_response_bytes - read), decode_content=False)
                    if not chunk:
                        break
                    read += len(chunk)
            finally:
                response.close()  # whatever is left beyond the cap is dropped with the connection
            return response.status
        finally:
            pool.close()

    # --- apprise ---------------------------------------------------------------------------------

    def _apprise(self, url: str, message: Message) -> None:
        plugin = instantiate(url)
        names = reachable(url, plugin, self.allow_private)  # raises TargetRefused
        plugin.redirects = False
        if hasattr(plugin, "discovery"):
            plugin.discovery = False  # Matrix's .well-known answer would name a host nobody checked
        plugin.socket_connect_timeout = self.timeout_s
        plugin.socket_read_timeout = self.timeout_s
        markdown = scheme_of(url) in MARKDOWN_SCHEMES
        body, title = (message.markdown, md(message.title)) if markdown else (message.text, message.title)
        fmt = apprise.NotifyFormat.MARKDOWN if markdown else apprise.NotifyFormat.TEXT
        bundle = apprise.Apprise()
        bundle.add(plugin)
        with (
            self._apprise_lock,
            netcheck.pinned(names, self.allow_private),
            apprise.LogCapture(level=logging.WARNING) as log,
        ):
            delivered = bundle.notify(body=body, title=title, body_format=fmt, notify_type=apprise.NotifyType.WARNING)
            captured = log.getvalue()
        if not delivered:
            reason = " ".join(captured.split())[-400:] or "apprise reported a failure"
            raise DeliveryError(reason)
