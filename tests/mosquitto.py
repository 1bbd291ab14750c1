"""A real MQTT broker for the tests (Debian's mosquitto on a free loopback port), and a client
that watches and commands the device the way Home Assistant does.

The broker runs as a subprocess with a generated config (no persistence, so a killed broker
comes back empty, like a broker whose disk was lost) and can be killed and started again on
the same port under a running device. Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Mosquitto:
    """One mosquitto process on ``127.0.0.1:port`` (the port survives :meth:`kill` + :meth:`start`)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=dict)
    tls: tuple[Path, Path] | None = None  # (certificate chain, key)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{'localhost' if self.tls else '127.0.0.1'}:{self.port}"

    def _config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            f"user {getpass.getuser()}",  # as root, mosquitto would switch to a user that cannot read tmp
        ]
        if self.users:
            if MOSQUITTO_PASSWD is None:
                raise RuntimeError("mosquitto_passwd is not installed")
            passwd = self.workdir / "passwd"
            passwd.unlink(missing_ok=True)
            for user, password in self.users.items():
                create = [] if passwd.exists() else ["-c"]
                subprocess.run([MOSQUITTO_PASSWD, *create, "-b", str(passwd), user, password], check=True,
                               capture_output=True, timeout=30)  # fmt: skip
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [f"certfile {self.tls[0]}", f"keyfile {self.tls[1]}"]
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts TCP connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        config = self._config()
        self.proc = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

        def accepting() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_for(accepting, timeout, f"mosquitto to listen on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without a word, as on a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def make_tls_files(workdir: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate for ``localhost`` signed by it: (CA, chain, key), with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        workdir / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=LOOP test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    ext = workdir / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
    )
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


class HomeAssistant:
    """What Home Assistant does with a device: subscribe to discovery and states, send commands.

    Keeps the latest payload of every topic (and whether it was retained) and wakes waiters
    on every message.
    """

    def __init__(
        self, port: int, *, prefix: str = "homeassistant", topics: tuple[str, ...] = ("loop/#",)
    ) -> None:
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        self.prefix = prefix
        self.port = port
        self.latest: dict[str, bytes] = {}
        self.retained: dict[str, bool] = {}
        self.counts: dict[str, int] = {}
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=f"hass-test-{port}-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(f"{prefix}/#", 1), *((t, 1) for t in topics)]
        )
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()

    def __enter__(self) -> HomeAssistant:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("the Home Assistant stand-in could not subscribe")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._cond:
            self.latest[message.topic] = bytes(message.payload)
            self.retained[message.topic] = bool(message.retain)
            self.counts[message.topic] = self.counts.get(message.topic, 0) + 1
            self._cond.notify_all()

    def forget(self) -> None:
        """Drop everything seen so far (to watch what is published again)."""
        with self._cond:
            self.latest.clear()
            self.retained.clear()
            self.counts.clear()

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``predicate`` holds, re-checked on every message."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                seen = {t: v[:80] for t, v in self.latest.items() if not t.endswith("/screen")}
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; seen: {seen}")

    def wait_for(self, topic: str, payload: str | None = None, timeout: float = 15.0) -> bytes:
        """The topic's latest payload, once there is one (equal to ``payload`` when given)."""

        def ok() -> bool:
            value = self.latest.get(topic)
            return value is not None and (payload is None or value.decode(errors="replace") == payload)

        self.wait(ok, timeout, f"{topic} = {payload!r}" if payload is not None else topic)
        return self.latest[topic]

    def configs(self) -> dict[str, dict[str, Any]]:
        """Every discovery config seen, parsed, by topic (deleted ones left out)."""
        with self._cond:
            items = list(self.latest.items())
        return {
            t: json.loads(v)
            for t, v in items
            if t.startswith(f"{self.prefix}/") and t.endswith("/config") and v
        }

    def find_config(self, component: str, obj: str) -> dict[str, Any] | None:
        """One entity's discovery config, or None if it has not arrived."""
        configs = self.configs()
        suffix = f"/{obj}/config"
        return next(
            (
                c
                for t, c in configs.items()
                if t.startswith(f"{self.prefix}/{component}/") and t.endswith(suffix)
            ),
            None,
        )

    def config(self, component: str, obj: str) -> dict[str, Any]:
        """One entity's discovery config (waiting for it a little)."""
        self.wait(lambda: self.find_config(component, obj) is not None, 15, f"the {component} {obj} config")
        found = self.find_config(component, obj)
        assert found is not None
        return found

    def options(self) -> list[str] | None:
        """The select's options, or None before its config arrived."""
        select = self.find_config("select", "item")
        return None if select is None else list(select["options"])

    def send(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        """Publish as Home Assistant does (QoS 1 by the entity configs, not retained)."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
