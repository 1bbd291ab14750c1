"""Where a request may come from: the ``Host`` it names and the site that sent it.

Two checks, both pure functions of a few header values (``security.init_app`` applies them
to every request, before anything else):

* **DNS rebinding** (``HostPolicy``): a page on ``rebind.evil.example`` can make its DNS name
  point at the device and then read the device's answers as its own. The name survives in
  the ``Host`` header, so the device answers only to names it really has: an IP literal
  (IPv4, or IPv6 in brackets, either with a port), ``localhost``, its hostname, the
  hostname's first label and that label with ``.local`` (mDNS), and the names listed in
  the config (``[web] hosts``; ``"*"`` there turns the check off). Anything else, malformed
  values included, is answered 421 (Misdirected Request). A request without a ``Host``
  header (HTTP/1.0), or with an empty one, is let through: every browser sends the name it
  connected to, and without a browser there is no page to rebind.
* **Cross-site requests** (``cross_origin_refusal``): decided from what browsers send, the
  way Go 1.25's ``http.CrossOriginProtection`` does, so that scripts need no extra header.
  GET, HEAD and OPTIONS are always allowed (they change nothing). Otherwise a
  ``Sec-Fetch-Site`` header, when present, must say ``same-origin`` or ``none`` (typed in the
  address bar); without it an ``Origin`` header, when present, must name the host the
  request was sent to (compared without regard to case, as host names are); a request with
  neither comes from a non-browser client (curl, a script) and is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: ``Host`` values longer than this are refused without further parsing.
MAX_HOST_LENGTH = 300
ANY_HOST = "*"

_PORT = re.compile(r"[0-9]{1,5}")


def normalise_name(name: str) -> str:
    """A host name as compared: lower case, without the root's trailing dot."""
    name = name.strip().lower()
    return name[:-1] if name.endswith(".") else name


def names_for_hostname(hostname: str) -> list[str]:
    """The names a machine called ``hostname`` answers to: it, its first label, ``label.local``."""
    full = normalise_name(hostname)
    if not full:
        return []
    label = full.split(".", 1)[0]
    return list(dict.fromkeys([full, label, f"{label}.local"]))


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a ``Host`` header value; None when it is malformed.

    IPv6 literals keep their brackets off: ``"[::1]:8080"`` is ``("::1", 8080)``.
    """
    if not value or len(value) > MAX_HOST_LENGTH or not value.isascii():
        return None
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            return None
        name, rest = value[1:close], value[close + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:
        return None  # a bare IPv6 address (or worse): not a valid Host
    else:
        name, sep, port_text = value.partition(":")
        if not sep:
            port_text = None
    port = None
    if port_text is not None:
        if not _PORT.fullmatch(port_text) or not 0 < int(port_text) <= 65535:
            return None
        port = int(port_text)
    return name, port


def is_ip_literal(name: str) -> bool:
    """True for a dotted-quad IPv4 address or an IPv6 address (without brackets)."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` values the device answers to (see the module docstring).

    Args:
        hostname: the machine's host name (``socket.gethostname()``); None for none.
        extra: further names from the config (``[web] hosts``); ``"*"`` allows any host.
    """

    def __init__(self, hostname: str | None, extra: Iterable[str] = ()) -> None:
        names = {"localhost"}
        if hostname:
            names.update(names_for_hostname(hostname))
        extra_names = {normalise_name(name) for name in extra}
        self.any_host = ANY_HOST in extra_names
        names.update(extra_names - {ANY_HOST, ""})
        self.names = frozenset(names)

    def allows(self, host: str | None) -> bool:
        """True when a request naming ``host`` (the raw ``Host`` header; None if absent) is for us."""
        if not host or self.any_host:
            return True
        parts = split_host(host)
        if parts is None:
            return False
        name, _port = parts
        if host.startswith("["):
            return ":" in name and is_ip_literal(name)
        if is_ip_literal(name):
            return True
        return normalise_name(name) in self.names


def cross_origin_refusal(
    method: str, sec_fetch_site: str | None, origin: str | None, host: str | None
) -> bool:
    """True when a request must be refused as coming from another site (see the module docstring).

    Args:
        method: the HTTP method.
        sec_fetch_site: the ``Sec-Fetch-Site`` header (None or "" when absent).
        origin: the ``Origin`` header (None or "" when absent).
        host: the ``Host`` header the request carries.
    """
    if method.upper() in SAFE_METHODS:
        return False
    if sec_fetch_site:
        return sec_fetch_site not in ("same-origin", "none")
    if not origin:
        return False
    try:
        netloc = urlsplit(origin.strip()).netloc
    except ValueError:
        return True
    return not (netloc and host and netloc.lower() == host.strip().lower())


__all__ = [
    "SAFE_METHODS",
    "HostPolicy",
    "cross_origin_refusal",
    "is_ip_literal",
    "names_for_hostname",
    "split_host",
]
