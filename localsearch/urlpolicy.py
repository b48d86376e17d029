"""The URL policy: what a URL that came from the web (a search result, a link, a redirect, a
browser) may point at.

localsearch is untrusted by default: such URLs are http(s) only, and a host that is, or
resolves to, an address of the user's own machine or network (loopback, private, link-local,
shared, multicast, reserved, unspecified, cloud metadata) is refused, whatever form the
address is written in (``0x7f000001``, ``2130706433``, ``0177.0.0.1``, ``127.1``, ``[::1]``,
``[::ffff:127.0.0.1]``, 6to4 and NAT64 embeddings). ``file:`` URLs and local paths are read
only when the user named them (``localsearch index FILE``). The ``allowed_hosts`` setting
opens what the user chooses: host names (``wiki.corp.example``, ``*.corp.example``), IPs and
CIDRs (``10.0.0.0/8``, ``[fd00::]/8``), each optionally with ``:port``.

    policy = UrlPolicy.from_config(config)
    policy.check_syntax(url)  # no DNS: scheme, host, port, numeric addresses, file:
    policy.check(url)         # the same, then the addresses the host name resolves to

Both return "" when the URL is allowed, else a one-line reason. A host whose name does not
resolve is not refused here: fetching it will fail on its own. The HTTP fetcher checks the
addresses again when it connects (``check_addresses``), so DNS rebinding between a check and
the connection gets nowhere. Standard library only, nothing heavy at import time.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any, Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["UrlPolicy", "parse_ip", "address_kind", "HINT"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
HINT = "allow it with the allowed_hosts setting"
DEFAULT_PORTS = {"http": 80, "https": 443}

# What an address is, first match wins (so metadata comes before link-local). Everything here
# is the user's machine, their network, or no place on the public internet.
_KINDS: list[tuple[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]] = [
    (what, [ipaddress.ip_network(net) for net in nets.split()]) for what, nets in [
        ("a cloud metadata address", "169.254.169.254/32 169.254.170.2/32 169.254.170.23/32 "
                                     "fd00:ec2::254/128 fd00:ec2::23/128 100.100.100.200/32 192.0.0.192/32"),
        ("a loopback address", "127.0.0.0/8 ::1/128"),
        ("an unspecified address", "0.0.0.0/8 ::/128"),
        ("a private address", "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7 fec0::/10 64:ff9b:1::/48"),
        ("a link-local address", "169.254.0.0/16 fe80::/10"),
        ("a shared (carrier-grade NAT) address", "100.64.0.0/10"),
        ("a multicast address", "224.0.0.0/4 ff00::/8"),
        ("a reserved address", "192.0.0.0/24 192.0.2.0/24 192.88.99.0/24 198.18.0.0/15 198.51.100.0/24 "
                               "203.0.113.0/24 240.0.0.0/4 100::/64 2001::/23 2001:db8::/32 3fff::/20"),
    ]
]
_NAT64 = [ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::ffff:0:0:0/96")]  # NAT64, SIIT
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible ::a.b.c.d

# Names that are local by definition (RFC 6761, 6762, 8375; ICANN's .internal): refused before
# any DNS unless allowed_hosts says otherwise. A single-label name is resolved through the
# machine's search domains, i.e. on the local network.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")
_BAD_NETLOC = re.compile(r"[\\\s\x00-\x1f\x7f]")


def parse_ip(host: str) -> IPAddress | None:
    """The IP address a URL host stands for, in any form a resolver or browser accepts:
    dotted quads and inet_aton's forms (``0x7f000001``, ``2130706433``, ``0177.0.0.1``,
    ``127.1``), a trailing dot, IPv6 with or without brackets and zone. None for a host name;
    ValueError for a host that is numeric (its last label is a number) but no valid address."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        return ipaddress.IPv6Address(host.split("%", 1)[0])
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not _NUMBER.fullmatch(labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError(f"{host} is not a valid IPv4 address")
    numbers = []
    for label in labels:
        try:
            if label.startswith("0x"):
                numbers.append(int(label[2:] or "0", 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label, 8))
            else:
                numbers.append(int(label, 10))
        except ValueError:
            raise ValueError(f"{host} is not a valid IPv4 address") from None
    *parts, last = numbers
    if any(n > 255 for n in parts) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host} is not a valid IPv4 address")
    value = last
    for i, n in enumerate(parts):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to: IPv4-mapped, IPv4-compatible, 6to4,
    NAT64 (64:ff9b::/96) and SIIT forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or (ip in _COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_kind(ip: IPAddress) -> tuple[str, IPAddress]:
    """What kind of non-public address ``ip`` is ("a loopback address", ...; "" for a public
    one), and the address that was judged: the IPv4 address an IPv6 one embeds, else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ipaddress.IPv6Address(int(ip))  # without a zone
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return address_kind(inner)[0], inner
    for what, nets in _KINDS:
        if any(ip in net for net in nets):
            return what, ip
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_loopback or ip.is_link_local \
            or ip.is_unspecified or getattr(ip, "is_site_local", False):
        return "a reserved address", ip  # whatever this Python's ipaddress knows beyond the table
    return "", ip


def _show(ip: IPAddress | str) -> str:
    return f"[{ip}]" if ":" in str(ip) else str(ip)


@dataclass(frozen=True)
class _Entry:
    """One allowed_hosts entry: a name (or ``*.suffix``), or a network; any port or one."""

    text: str
    name: str = ""
    suffix: str = ""
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> "_Entry":
        raw = text.strip().lower()
        host, port = raw, None
        if raw.startswith("["):  # [v6], [v6]/len, [v6]:port, [v6]/len:port, [v6/len]...
            close = raw.find("]")
            if close < 0:
                raise ValueError(f"{text!r}: missing ]")
            host, rest = raw[1:close], raw[close + 1:]
            if rest.startswith("/"):
                length, _, rest = rest[1:].partition(":")
                host, rest = f"{host}/{length}", (":" + rest if rest else "")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"{text!r} is not a host, IP or CIDR")
                port = rest[1:]
        elif raw.count(":") == 1:  # name:port, IPv4:port, CIDR:port; more colons: bare IPv6
            host, port = raw.split(":")
        if port is not None:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{text!r}: {port!r} is not a port")
            port = int(port)
        host = host.rstrip(".")
        if not host:
            raise ValueError(f"{text!r} names no host")
        try:
            if "/" in host:
                return cls(text, network=ipaddress.ip_network(host, strict=False), port=port)
            ip = parse_ip(host)
        except ValueError as error:
            raise ValueError(f"{text!r} is not a host, IP or CIDR ({error})") from None
        if ip is not None:
            return cls(text, network=ipaddress.ip_network(ip), port=port)
        if host.startswith(("*.", ".")):
            suffix = "." + host.lstrip("*").lstrip(".")
            if suffix == ".":
                raise ValueError(f"{text!r} names no host")
            return cls(text, suffix=suffix, port=port)
        if not re.fullmatch(r"[\w.-]+", host):
            raise ValueError(f"{text!r} is not a host, IP or CIDR")
        return cls(text, name=host, port=port)

    def host_matches(self, host: str, ip: IPAddress | None) -> bool:
        if self.network is not None:
            return ip is not None and ip in self.network
        if ip is not None:
            return False
        return host == self.name or (bool(self.suffix) and host.endswith(self.suffix))


class UrlPolicy:
    """Which URLs from the web may be fetched; see the module's docstring."""

    def __init__(self, allowed_hosts: Iterable[str] = (), *, allow_files: bool = False,
                 allowed_folders: Iterable[str] = ()):
        self.allow_files = allow_files
        self.entries = [_Entry.parse(item) for item in allowed_hosts]
        # Folders of the user's own files that plugins (a search engine over them) may read. Only
        # absolute ones: a relative folder would mean another one in the server than in the CLI.
        self.folders = [Path(folder).expanduser().resolve() for folder in allowed_folders
                        if str(folder).strip() and Path(folder).expanduser().is_absolute()]

    @classmethod
    def from_config(cls, config: Any, allow_files: bool = False) -> "UrlPolicy":
        """The policy of ``config.allowed_hosts``. ``allow_files``: the user named the URLs
        (``localsearch index FILE``), so ``file:`` URLs and local paths may be read."""
        try:
            return cls(config.get("allowed_hosts", None) or [], allow_files=allow_files,
                       allowed_folders=config.get("allowed_folders", None) or [])
        except ValueError as error:
            from .errors import ConfigError

            raise ConfigError(f"setting 'allowed_hosts': {error}") from None

    # -- the checks ---------------------------------------------------------------------
    def check_syntax(self, url: str) -> str:
        """"" if ``url`` may be fetched as far as can be told without DNS, else why not:
        the scheme, the host's form, the port, numeric addresses, local names, ``file:``."""
        target = self._target(url)
        return target if isinstance(target, str) else ""

    def check(self, url: str) -> str:
        """``check_syntax``, then every address the host name resolves to (DNS: call it from
        a worker thread). A name that does not resolve is not refused."""
        target = self._target(url)
        if isinstance(target, str):
            return target
        if target is None:
            return ""
        host, port = target
        if self._allowed(host, None, port):
            return ""
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError):
            return ""
        return self.check_addresses(host, port, addresses)

    def check_addresses(self, host: str, port: int, addresses: Iterable[str | IPAddress]) -> str:
        """"" if a connection to ``host``:``port`` may go to every one of ``addresses`` (what
        ``host`` resolved to), else why not. A host allowed by name may go anywhere."""
        host = host.strip().lower().rstrip(".")
        if self._allowed(host, None, port):
            return ""
        written = _maybe_ip(host)
        for address in addresses:
            ip = ipaddress.ip_address(str(address).split("%", 1)[0])
            reason = self._check_ip(_show(host) if written == ip else host, ip, port, resolved=written != ip)
            if reason:
                return reason
        return ""

    @staticmethod
    def resolve(host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, as the system resolver answers (blocking)."""
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(info[4][0] for info in infos))

    # -- helpers ------------------------------------------------------------------------
    def _target(self, url: str) -> str | tuple[str, int] | None:
        """A reason (str), or what is left to check: (host name, port); None: nothing is."""
        if not isinstance(url, str) or not url.strip():
            return "not a URL"
        try:
            parts = urlsplit(url.strip())
        except ValueError as error:
            return f"not a valid URL ({error})"
        scheme = parts.scheme.lower()
        if scheme == "file" or (not scheme and not parts.netloc) or len(scheme) == 1:  # 1: C:\...
            if scheme == "file" and parts.hostname not in (None, "", "localhost"):
                return f"file: URLs on another host ({parts.hostname}) are not read"
            if self.allow_files or (scheme == "file" and self._in_allowed_folder(unquote(parts.path))):
                return None
            return ("file: URLs and local paths are read only when you name them (localsearch index FILE) "
                    "or they are in a folder of the allowed_folders setting")
        if not scheme:
            return f"{url.strip()} has no scheme (only http and https URLs are fetched)"
        if scheme not in DEFAULT_PORTS:
            return f"{scheme}: URLs are not fetched (only http and https)"
        if _BAD_NETLOC.search(parts.netloc):
            return f"the host part of {url.strip()} is malformed"
        try:
            port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
        except ValueError:
            port = 0
        if not port:
            return f"the port of {url.strip()} is not valid"
        written = parts.hostname or ""
        if not written.rstrip("."):
            return f"{url.strip()} has no host"
        try:  # what a client sends to DNS: ｌｏｃａｌｈｏｓｔ is localhost, １２７。０。０。１ 127.0.0.1
            host = written if written.isascii() else written.encode("idna").decode("ascii")
        except UnicodeError:
            host = written  # a name Python's IDNA 2003 cannot encode: DNS and the connection decide
        try:
            ip = parse_ip(host)
        except ValueError as error:
            return str(error)
        if ip is not None:
            return self._check_ip(_show(written), ip, port, resolved=False) or None
        host = host.rstrip(".")
        if self._allowed(host, None, port):
            return None
        if not any(entry.network is not None for entry in self.entries):  # else DNS decides
            if host == "localhost" or host.endswith(".localhost"):
                return f"{host} is a loopback name ({self._hint(host, None)})"
            if host.endswith(_LOCAL_SUFFIXES) or "." not in host:
                return f"{host} is a local network name ({self._hint(host, None)})"
        return host, port

    def _in_allowed_folder(self, path: str) -> bool:
        if not self.folders or not path:
            return False
        try:
            resolved = Path(path).resolve()  # symlinks and .. resolved: no way out of the folder
        except (OSError, ValueError):
            return False
        return any(resolved == folder or folder in resolved.parents for folder in self.folders)

    def _check_ip(self, host: str, ip: IPAddress, port: int, resolved: bool) -> str:
        """Why a connection to ``ip`` (``host`` as written, or the name that resolved to it)
        is refused, or ""."""
        what, judged = address_kind(ip)
        if not what or self._allowed("", ip, port) or (judged != ip and self._allowed("", judged, port)):
            return ""
        if resolved:
            said = f"{host} resolves to {ip}, " + (f"that is {judged}, " if judged != ip else "") + what
        elif host.strip("[]") == str(judged):
            said = f"{host} is {what}"
        else:
            said = f"{host} is {judged}, {what}"
        return f"{said} ({self._hint('', judged)})"

    def _allowed(self, host: str, ip: IPAddress | None, port: int) -> bool:
        return any(entry.host_matches(host, ip) and entry.port in (None, port) for entry in self.entries)

    def _hint(self, host: str, ip: IPAddress | None) -> str:
        ports = sorted({entry.port for entry in self.entries if entry.port and entry.host_matches(host, ip)})
        if ports:
            return f"allowed_hosts allows it on port {', '.join(map(str, ports))} only"
        return HINT


def _maybe_ip(host: str) -> IPAddress | None:
    try:
        return parse_ip(host)
    except ValueError:
        return None
