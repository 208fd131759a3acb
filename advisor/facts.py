"""What runs on the host: listening sockets (/proc/net/tcp, tcp6, udp, udp6), process names
(/proc/*/comm), installed packages (dpkg status), the host's own addresses (/proc/net/fib_trie,
/proc/net/if_inet6) and sshd's configured ports. Each is None when it cannot be seen."""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re

from advisor.host import HostView

LISTEN, UDP_UNCONNECTED = "0A", "07"


@dataclasses.dataclass
class Facts:
    listening: set[int] | None  # TCP ports in LISTEN state, and bound UDP ports
    processes: set[str] | None
    packages: set[str] | None
    addresses: set[str] | None
    sshd_ports: list[int] | None
    journal: bool | None
    fingerprint: str = ""

    def as_json(self) -> dict[str, object]:
        def show(value: object) -> object:
            return "unknown" if value is None else sorted(value) if isinstance(value, set) else value

        return {"listening_ports": show(self.listening), "processes": show(self.processes),
                "packages": "unknown" if self.packages is None else len(self.packages),
                "addresses": show(self.addresses), "sshd_ports": show(self.sshd_ports),
                "journal": show(self.journal)}


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))  # each 32-bit word in host order
    return str(ipaddress.IPv6Address(words))


def listening(host: HostView) -> tuple[set[int] | None, str]:
    ports: set[int] = set()
    seen, raw = False, []
    for name, state in (("tcp", LISTEN), ("tcp6", LISTEN), ("udp", UDP_UNCONNECTED), ("udp6", UDP_UNCONNECTED)):
        text = host.read(f"/proc/net/{name}")
        if text is None:
            continue
        seen = True
        for line in text.splitlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[3] == state and ":" in parts[1]:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
                raw.append(f"{name}:{parts[1]}")
    return (ports if seen else None), ",".join(sorted(raw))


def processes(host: HostView) -> set[str] | None:
    names = set()
    for pid in host.pid_dirs():
        try:
            names.add((pid / "comm").read_text().strip())
        except OSError:
            continue
    return names or None


def packages(host: HostView) -> tuple[set[str] | None, str]:
    stat = host.stat("/var/lib/dpkg/status")
    text = host.read("/var/lib/dpkg/status", limit=64 * 1024 * 1024)
    if text is None or stat is None:
        return None, ""
    installed = set()
    for block in text.split("\n\n"):
        name = re.search(r"^Package: (\S+)", block, re.MULTILINE)
        if name and re.search(r"^Status: .* installed$", block, re.MULTILINE):
            installed.add(name.group(1))
    return installed, f"{stat.st_mtime_ns}:{stat.st_size}"


def addresses(host: HostView) -> set[str] | None:
    found: set[str] = set()
    trie = host.read("/proc/net/fib_trie")
    six = host.read("/proc/net/if_inet6")
    if trie is None and six is None:
        return None
    last = None
    for line in (trie or "").splitlines():
        if m := re.match(r"\s*[|+]-- (\d+\.\d+\.\d+\.\d+)$", line):
            last = m.group(1)
        elif "/32 host LOCAL" in line and last:
            found.add(last)
    for line in (six or "").splitlines():
        if line.split():  # network byte order here (unlike /proc/net/tcp6)
            found.add(str(ipaddress.IPv6Address(bytes.fromhex(line.split()[0]))))
    return found


def sshd_ports(host: HostView) -> list[int] | None:
    main = host.read("/etc/ssh/sshd_config")
    if main is None:
        return None
    texts = [main]
    for path in host.matches("/etc/ssh/sshd_config.d/*.conf"):
        texts.append(host.read(path) or "")
    # sshd takes the FIRST value of a keyword; Port may repeat (one listener each); the includes come first on Debian
    ports = [int(m) for text in texts[1:] + texts[:1] for m in re.findall(r"^\s*Port\s+(\d+)", text, re.I | re.M)]
    return sorted(set(ports)) or [22]


def gather(host: HostView) -> Facts:
    ports, raw_ports = listening(host)
    procs = processes(host)
    pkgs, pkg_mark = packages(host)
    facts = Facts(ports, procs, pkgs, addresses(host), sshd_ports(host), host.journal())
    mark = "|".join([raw_ports, ",".join(sorted(procs or ())), pkg_mark, ",".join(sorted(facts.addresses or ())),
                     str(facts.sshd_ports), str(facts.journal)])
    facts.fingerprint = hashlib.sha256(mark.encode()).hexdigest()
    return facts
