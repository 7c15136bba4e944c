"""--pseudonymize: hostnames, IP addresses, MAC addresses and user names become
consistent stand-ins (the same value, the same stand-in, in every section and format
of one report). The mapping is written next to the report, mode 0600, and never into
it (soscleaner#168 shipped its mapping inside the "clean" archive).

Kept as they are: loopback, unspecified, netmasks (255.*), multicast and the
documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32),
which identify nobody. IPv4 stand-ins keep /24 neighbourhoods and the host byte
(10.0.2.15 and 10.0.2.2 become 100.64.0.15 and 100.64.0.2), so a NAT guest still
looks like one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from shipyard_doctor.report.redact import MARK_PREFIX

_IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w]|\.\d)")
_MAC = re.compile(r"(?<![\w:])([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})(?![\w:])")
_IPV6 = re.compile(r"(?<![\w:.])((?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4})(?![\w:])")
_DOC_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
_KEEP_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _kept(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        address.is_loopback
        or address.is_unspecified
        or address.is_multicast
        or any(address in net for net in _DOC_NETS)
        or (address.version == 4 and str(address).startswith("255."))
    )


class Pseudonymizer:
    def __init__(self, hostnames: Iterable[str] = (), users: Iterable[str] = ()):
        self.ipv4: dict[str, str] = {}
        self.ipv6: dict[str, str] = {}
        self.mac: dict[str, str] = {}
        self._prefixes: dict[str, int] = {}
        self.hostnames: dict[str, str] = {}
        self.users: dict[str, str] = {}
        for name in sorted(
            {h for h in hostnames if h and h.lower() not in _KEEP_NAMES}
        ):
            self.hostnames[name] = f"host{len(self.hostnames) + 1}"
        for user in sorted({u for u in users if u}):
            self.users[user] = f"user{len(self.users) + 1}"
        words = sorted([*self.hostnames, *self.users], key=len, reverse=True)
        self._words = (
            re.compile(
                r"(?<![\w.-])(" + "|".join(re.escape(w) for w in words) + r")(?![\w-])"
            )
            if words
            else None
        )

    def mapping(self) -> dict[str, dict[str, str]]:
        return {
            "ipv4": dict(self.ipv4),
            "ipv6": dict(self.ipv6),
            "mac": dict(self.mac),
            "hostname": dict(self.hostnames),
            "user": dict(self.users),
        }

    def apply(self, text: str) -> str:
        text = _MAC.sub(self._mac, text)
        text = _IPV6.sub(self._v6, text)
        text = _IPV4.sub(self._v4, text)
        if self._words is not None:
            text = self._words.sub(self._word, text)
        return text

    def apply_data(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return {self.apply(str(k)): self.apply_data(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.apply_data(v) for v in obj]
        if isinstance(obj, str):
            return self.apply(obj)
        return obj

    def _word(self, m: re.Match[str]) -> str:
        word = m.group(1)
        return self.hostnames.get(word) or self.users.get(word) or word

    def _mac(self, m: re.Match[str]) -> str:
        mac = m.group(1).lower()
        if mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
            return m.group(1)
        if mac not in self.mac:
            n = len(self.mac) + 1
            self.mac[mac] = f"02:00:5e:00:{n // 256:02x}:{n % 256:02x}"
        return self.mac[mac]

    def _v4(self, m: re.Match[str]) -> str:
        text = m.group(1)
        try:
            address = ipaddress.IPv4Address(text)
        except ValueError:
            return text
        if _kept(address):
            return text
        key = str(address)
        if key not in self.ipv4:
            prefix, _, last = key.rpartition(".")
            if prefix not in self._prefixes:
                self._prefixes[prefix] = len(self._prefixes)
            n = self._prefixes[prefix]
            self.ipv4[key] = f"100.{64 + n // 256}.{n % 256}.{last}"
        return self.ipv4[key]

    def _v6(self, m: re.Match[str]) -> str:
        text = m.group(1)
        if MARK_PREFIX in text:
            return text
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            return text
        if _kept(address) or address.ipv4_mapped is not None:
            return text
        key = str(address)
        if key not in self.ipv6:
            self.ipv6[key] = f"fd00:5053::{len(self.ipv6) + 1:x}"
        return self.ipv6[key]
