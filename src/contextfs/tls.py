"""TLS for ``contextfs serve``, ``mcp --http`` and their clients: contexts and the exposure rule.

Both ends use the standard library's ``ssl`` with TLS 1.2 as the floor. A
server loads its certificate chain and key from PEM files; a client verifies
the server's certificate and host name against the system's trust store, or
against a CA file it is given (a team's private CA). The rule every server
here follows: beyond this machine, a token is required, and so is TLS unless
the user says ``--insecure`` (and is warned), because without it the token
crosses the network in clear text.
"""

from __future__ import annotations

import ipaddress
import os
import ssl

from .errors import InvalidInputError

#: The oldest protocol either end accepts.
MIN_VERSION = ssl.TLSVersion.TLSv1_2
#: The environment variable naming a CA file clients trust (as ``--ca``).
CA_ENV = "CONTEXTFS_CA"


def server_context(
    cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]
) -> ssl.SSLContext:
    """A server context with the certificate chain of ``cert_file`` and the key of ``key_file``.

    Raises:
        InvalidInputError: a file is missing or unreadable, is not PEM, or the key
            does not match the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSION
    try:
        context.load_cert_chain(certfile=cert_file, keyfile=key_file)
    except FileNotFoundError as exc:
        raise InvalidInputError(f"no such TLS file: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise InvalidInputError(
            f"cannot use TLS certificate {os.fspath(cert_file)!r} with key"
            f" {os.fspath(key_file)!r}: {_reason(exc)}"
        ) from None
    return context


def client_context(ca_file: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A client context that verifies servers against ``ca_file`` or, without one, the system.

    ``ca_file`` defaults to ``$CONTEXTFS_CA`` when set.

    Raises:
        InvalidInputError: the CA file is missing, unreadable or holds no certificate.
    """
    chosen = ca_file if ca_file is not None else os.environ.get(CA_ENV) or None
    ca = os.fspath(chosen) if chosen is not None else None
    try:
        context = ssl.create_default_context(cafile=ca)
    except FileNotFoundError:
        raise InvalidInputError(f"no such CA file: {ca!r}") from None
    except (ssl.SSLError, OSError) as exc:
        raise InvalidInputError(f"cannot read CA file {ca!r}: {_reason(exc)}") from None
    context.minimum_version = MIN_VERSION
    return context


def check_exposure(
    host: str, *, token: bool, tls: bool, insecure: bool, what: str = "serving"
) -> str | None:
    """Apply the exposure rule to a server about to listen on ``host``.

    Returns:
        A warning to show when the server goes beyond this machine without TLS
        (allowed by ``insecure``), else ``None``.

    Raises:
        InvalidInputError: beyond this machine without a token, or without TLS
            and without ``insecure``.
    """
    if is_loopback(host):
        return None
    if not token:
        raise InvalidInputError(
            f"{what} on {host!r} (beyond this machine) needs a token: pass --token"
            " or create one with `contextfs token create`"
        )
    if tls:
        return None
    if not insecure:
        raise InvalidInputError(
            f"{what} on {host!r} (beyond this machine) without TLS would send tokens in"
            " clear text: pass --tls-cert and --tls-key, or --insecure to accept that"
        )
    return (
        f"warning: {what} on {host!r} without TLS: tokens and memories cross the"
        " network in clear text"
    )


def is_loopback(host: str) -> bool:
    """True for a host name or address that stays on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reason(exc: BaseException) -> str:
    """An SSL or OS error's reason, in one line without the errno prefix."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())


__all__ = [
    "CA_ENV",
    "MIN_VERSION",
    "check_exposure",
    "client_context",
    "is_loopback",
    "server_context",
]
