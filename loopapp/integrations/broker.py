"""The MQTT broker: its address, a paho-mqtt client for it, and a one-off login check.

Shared by the bridge (:mod:`loopapp.integrations.mqtt`) and ``loop doctor``. ``mqtts://``
verifies the broker's certificate and host name against the system CA store.
"""

from __future__ import annotations

import ssl
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from libloop.errors import LoopError

if TYPE_CHECKING:
    from paho.mqtt.client import Client


class MqttError(LoopError):
    """The MQTT bridge cannot be set up (a bad URL, paho-mqtt not installed)."""

    code = "mqtt_error"


@dataclass(frozen=True)
class Broker:
    """Where the broker is and how to log in; parsed from ``[mqtt] url`` and the credentials."""

    host: str
    port: int
    tls: bool
    username: str = ""
    password: str = ""

    @classmethod
    def parse(cls, url: str, username: str = "", password: str = "") -> Broker:
        """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``; credentials in the URL work too."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise MqttError(f"{url!r} is not a broker URL like mqtt://broker.lan:1883.") from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise MqttError(
                f"{url!r} is not a broker URL like mqtt://broker.lan:1883 or mqtts://broker.lan:8883."
            )
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            tls=tls,
            username=username or unquote(parts.username or ""),
            password=password or unquote(parts.password or ""),
        )

    @property
    def url(self) -> str:
        """The address for people and logs (never the password)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def require_paho() -> None:
    """Raise MqttError with the fix when paho-mqtt cannot be imported."""
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        raise MqttError(f"MQTT needs paho-mqtt: {sys.executable} -m pip install 'paho-mqtt>=2.0'.") from None


def new_client(broker: Broker, client_id: str, *, connect_timeout: float = 5.0) -> Client:
    """A paho client for ``broker`` (TLS with the system CA store for ``mqtts://``); nothing is sent."""
    require_paho()
    from paho.mqtt.client import Client, MQTTv311
    from paho.mqtt.enums import CallbackAPIVersion

    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=MQTTv311,
        reconnect_on_failure=False,  # the connector does it, with backoff and the error's text
    )
    client.connect_timeout = connect_timeout
    client.max_queued_messages_set(256)
    if broker.username:
        client.username_pw_set(broker.username, broker.password or None)
    if broker.tls:
        context = _HandshakingContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and host name
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)  # the system CA store
        client.tls_set_context(context)
    return client


class _HandshakingContext(ssl.SSLContext):
    """Does the TLS handshake inside ``wrap_socket`` and closes the socket when it fails.

    paho-mqtt (2.2) does the handshake after wrapping and leaves the socket open when it fails
    (an untrusted certificate, say), one leaked socket per attempt; its own later handshake
    call is a no-op on a socket that has finished one.
    """

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        wrapped = super().wrap_socket(sock, *args, **kwargs)
        try:
            wrapped.do_handshake()
        except BaseException:
            wrapped.close()
            raise
        return wrapped


def describe(exc: BaseException) -> str:
    """One phrase for why a connection attempt failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running, and is this its port?)"
    if isinstance(exc, TimeoutError):
        return "no answer (a firewall, or the wrong address?)"
    import socket

    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    return str(exc) or type(exc).__name__


def probe_broker(broker: Broker, timeout: float = 5.0) -> str:
    """Log in to the broker once, as the device would (``loop doctor``); returns what worked.

    Raises:
        MqttError: one sentence saying what failed (unreachable, refused, no MQTT answer).
    """
    import os

    client = new_client(broker, f"loop-doctor-{os.getpid()}", connect_timeout=timeout)
    answered = threading.Event()
    reasons: list[Any] = []

    def on_connect(client: Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        reasons.append(reason)
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(broker.host, broker.port, keepalive=10)
    except (OSError, ValueError) as exc:
        raise MqttError(f"Cannot connect to {broker.url}: {describe(exc)}.") from None
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise MqttError(f"{broker.url} took the connection but gave no MQTT answer within {timeout:g} s.")
        if reasons[0].is_failure:
            raise MqttError(f"{broker.url} refused the connection: {reasons[0]}.")
    finally:
        client.disconnect()
        client.loop_stop()
    who = f" as {broker.username!r}" if broker.username else ""
    return f"{broker.url} accepts the device{who}"
