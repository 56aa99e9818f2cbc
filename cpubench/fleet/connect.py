"""Reaching the scheduler: the address, TLS with certificates (Dask's ``Security``), and the risk of plain tcp.

Why a warning at all: a Dask scheduler runs whatever it is sent, on every worker. On loopback (or through an SSH
tunnel) only this machine's users can send it anything; on a network address with plain ``tcp://`` anyone who can
reach the port can run code on every benchmark host. ``tls://`` with a CA, a certificate and a key on every side
(``--tls-ca-file``, ``--tls-cert``, ``--tls-key``, the same options as ``dask scheduler``) shuts them out.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from typing import Any
from urllib.parse import urlsplit

SCHEMES = ("tcp", "tls")


class FleetError(Exception):
    """A fleet command that cannot go on: the message is one line naming what and the fix."""


def parse_address(address: str) -> tuple[str, str, int]:
    """``tcp://HOST:PORT`` or ``tls://HOST:PORT`` as (scheme, host, port); a bare ``HOST:PORT`` is tcp."""
    text = address.strip()
    if "://" not in text:
        text = "tcp://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if parts is None or parts.scheme not in SCHEMES or not parts.hostname or port is None or parts.path:
        raise FleetError(f"--scheduler {address!r}: expected tcp://HOST:PORT or tls://HOST:PORT")
    return parts.scheme, parts.hostname, port


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine's loopback (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def risk_line(address: str, what: str = "scheduler") -> str | None:
    """The one line naming the risk of a plain-tcp address off loopback, or None when there is none."""
    scheme, host, port = parse_address(address)
    if scheme == "tls" or is_loopback(host):
        return None
    return (
        f"cpubench fleet: warning: the {what} at tcp://{host}:{port} is plain tcp on a network address: anyone who "
        "can reach it can run code on every benchmark host; use tls:// with --tls-ca-file/--tls-cert/--tls-key, "
        "or an SSH tunnel to 127.0.0.1"
    )


def add_security_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls-ca-file", metavar="PEM", help="CA certificate that signed every party's certificate")
    p.add_argument("--tls-cert", metavar="PEM", help="this party's certificate (tls:// schedulers)")
    p.add_argument("--tls-key", metavar="PEM", help="this party's private key (if not in --tls-cert)")


def security(args: argparse.Namespace, address: str) -> Any:
    """Dask's ``Security`` for a tls:// address (certificates required on both ends), else None."""
    scheme, _host, _port = parse_address(address)
    given = [args.tls_ca_file, args.tls_cert, args.tls_key]
    if scheme != "tls":
        if any(given):
            raise FleetError(f"--scheduler {address}: the --tls-* options need a tls:// address")
        return None
    if not (args.tls_ca_file and args.tls_cert):
        raise FleetError(f"--scheduler {address}: tls:// needs --tls-ca-file and --tls-cert (and --tls-key)")
    for f in given:
        if f and not os.path.isfile(f):
            raise FleetError(f"{f}: no such certificate or key file")
    from distributed.security import Security

    return Security(
        tls_ca_file=args.tls_ca_file,
        tls_client_cert=args.tls_cert,
        tls_client_key=args.tls_key,
        tls_worker_cert=args.tls_cert,
        tls_worker_key=args.tls_key,
        require_encryption=True,
    )


def client(address: str, sec: Any, timeout: float) -> Any:
    """A Dask client of the scheduler, or FleetError in one line when it cannot be reached in ``timeout`` s."""
    from distributed import Client

    try:
        return Client(address, security=sec, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as e:
        raise FleetError(
            f"no scheduler at {address} within {timeout:g} s ({type(e).__name__}); start `dask scheduler` there "
            "or check --scheduler"
        ) from None
