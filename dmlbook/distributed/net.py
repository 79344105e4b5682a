"""Addresses and interfaces: what counts as loopback, and where the rendezvous listens."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path


def loopback_interface() -> str:
    """Name of this machine's loopback network interface (``lo`` on Linux)."""
    iff_loopback = 0x8
    for path in sorted(Path("/sys/class/net").glob("*/flags")):
        try:
            if int(path.read_text(), 16) & iff_loopback:
                return path.parent.name
        except (OSError, ValueError):
            continue
    return "lo"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback only: ``127.0.0.1``, ``::1``,
    ``[::1]``, ``localhost``; a name is loopback if every address it resolves to is
    (IPv4 and IPv6 alike)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0].split("%", 1)[0] for info in infos}
    try:
        return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
    except ValueError:
        return False


def interfaces() -> list[str]:
    """This machine's network interface names."""
    try:
        return sorted(name for _, name in socket.if_nameindex())
    except OSError:
        return []


def check_interface(interface) -> str | None:
    """``interface`` if it names one of this machine's network interfaces (or is None)."""
    if interface is None:
        return None
    names = interfaces()
    if not isinstance(interface, str) or not interface or (names and interface not in names):
        raise ValueError(f"interface must be a network interface of this machine "
                         f"({', '.join(names) or 'none found'}) or None, got {interface!r}")
    return interface


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` only (never on every interface)."""
    port = int(port) if hasattr(port, "__index__") and not isinstance(port, bool) else port
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 2**16:
        raise ValueError(f"master_port must be a whole number in [0, 65535] (0: a free one), "
                         f"got {port!r}")
    try:
        address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        raise ValueError(f"master_addr must be an address of this machine, got {host!r}: "
                         f"{exc}") from exc
    sock = socket.socket(address[0], socket.SOCK_STREAM)
    try:
        sock.bind(address[4])
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port} for the rendezvous: "
                      f"{exc.strerror}; the port is taken by another program, pass another "
                      f"master_port, or master_port=0 for a free one") from exc
    sock.listen(128)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
