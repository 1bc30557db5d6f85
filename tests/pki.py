"""A throwaway PKI for TLS tests, made with the openssl CLI, and mosquitto.conf lines that use it.

Plain functions, no fixtures (fixtures shared between test files belong in conftest.py):

- `make_pki(workdir)`: a CA, a server cert for localhost/127.0.0.1, a client cert (CN
  `CLIENT_CN`) and an unrelated second CA, all EC P-256 and checked with
  `openssl verify -x509_strict`. Takes about 0.1 s (nine openssl runs).
- `tls_listener_config(pki, require_certificate=...)`: cafile/certfile/keyfile lines for
  `mosquitto_factory`.
- `password_config(workdir, users)`: a mosquitto_passwd file and the lines that enforce it.

Keys and the password file are written with umask 077 and are 0600. mosquitto reads them as root
because conftest's `mosquitto_config` adds `user root` when the tests run as root.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import find_tool

CLIENT_CN = "skn-001"
SERVER_CN = "localhost"
CA_CN = "Streetlight Test CA"
OTHER_CA_CN = "Unrelated Test CA"

# EC keys: generating one takes about a millisecond, an RSA 2048 key up to a few hundred.
_NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_CA_DAYS = "3650"
_LEAF_DAYS = "825"
_OPENSSL_TIMEOUT_S = 30.0
_KEY_MODE = 0o600
_CERT_MODE = 0o644

_CA_EXTENSIONS = [
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier=hash",
]
# `openssl x509 -req -extfile` takes a file; these are its lines for each kind of leaf cert.
_LEAF_EXTENSIONS = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "authorityKeyIdentifier=keyid,issuer",
    "subjectKeyIdentifier=hash",
]
_SERVER_EXTENSIONS = [
    *_LEAF_EXTENSIONS,
    "extendedKeyUsage=serverAuth",
    f"subjectAltName=DNS:{SERVER_CN},IP:127.0.0.1",
]
_CLIENT_EXTENSIONS = [*_LEAF_EXTENSIONS, "extendedKeyUsage=clientAuth"]


@dataclass(frozen=True)
class TestPki:
    """The files of a test PKI made by `make_pki` (PEM; keys unencrypted and 0600).

    `server_cert` is for CN=localhost with subjectAltName DNS:localhost, IP:127.0.0.1, so a client
    connecting to either name verifies it. `client_cert` has CN=`client_cn`. Both are signed by
    `ca_cert`. `other_ca_cert` is a second CA that signed nothing here: a client trusting only it
    must reject the server ("wrong CA" tests).
    """

    __test__ = False  # a dataclass, not a test class: keeps pytest from trying to collect it

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path
    client_cn: str = CLIENT_CN


def _openssl(*args: str, cwd: Path) -> str:
    """Run `openssl args...` in `cwd` with umask 077 (new keys are never readable by others).

    Returns its stdout; raises RuntimeError with openssl's output when it fails.
    """
    return _run_tool([find_tool("openssl"), *args], cwd=cwd)


def _run_tool(argv: list[str], *, cwd: Path | None = None) -> str:
    """Run `argv` with umask 077 and a timeout; its stdout, or RuntimeError with its output."""
    result = subprocess.run(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_OPENSSL_TIMEOUT_S,
        umask=0o077,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed with code {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


def _serial() -> str:
    """A random positive 63-bit serial number (what x509_strict and browsers expect)."""
    return hex(secrets.randbits(63) | 1)


def _make_ca(workdir: Path, name: str, cn: str) -> tuple[Path, Path]:
    """A self-signed CA `name`.crt / `name`.key in `workdir`."""
    cert, key = workdir / f"{name}.crt", workdir / f"{name}.key"
    extensions = [arg for ext in _CA_EXTENSIONS for arg in ("-addext", ext)]
    _openssl(
        "req", "-x509", *_NEW_KEY, "-keyout", str(key), "-out", str(cert),
        "-days", _CA_DAYS, "-sha256", "-set_serial", _serial(), "-subj", f"/CN={cn}",
        # no default extensions from openssl.cnf: exactly the ones above
        "-config", "/dev/null", *extensions,
        cwd=workdir,
    )  # fmt: skip
    key.chmod(_KEY_MODE)
    cert.chmod(_CERT_MODE)
    return cert, key


def _make_leaf(
    workdir: Path, name: str, cn: str, *, extensions: list[str], ca_cert: Path, ca_key: Path
) -> tuple[Path, Path]:
    """A cert `name`.crt / `name`.key for `cn` with `extensions`, signed by the CA."""
    cert, key = workdir / f"{name}.crt", workdir / f"{name}.key"
    csr, ext_file = workdir / f"{name}.csr", workdir / f"{name}.ext"
    ext_file.write_text("\n".join(extensions) + "\n")
    _openssl(
        "req", "-new", *_NEW_KEY, "-keyout", str(key), "-out", str(csr),
        "-subj", f"/CN={cn}", "-config", "/dev/null",
        cwd=workdir,
    )  # fmt: skip
    key.chmod(_KEY_MODE)
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-set_serial", _serial(), "-days", _LEAF_DAYS, "-sha256",
        "-extfile", str(ext_file), "-out", str(cert),
        cwd=workdir,
    )  # fmt: skip
    cert.chmod(_CERT_MODE)
    csr.unlink()
    return cert, key


def verify_cert(ca_cert: Path, cert: Path, *, purpose: str | None = None) -> None:
    """Run `openssl verify -x509_strict -CAfile ca_cert [-purpose purpose] cert`.

    Raises RuntimeError (with openssl's reason, e.g. "unable to get local issuer certificate")
    when `cert` does not verify.

    `purpose` is an openssl purpose such as "sslserver" or "sslclient".
    """
    args = ["verify", "-x509_strict", "-CAfile", str(ca_cert)]
    if purpose is not None:
        args += ["-purpose", purpose]
    _openssl(*args, str(cert), cwd=cert.parent)


def make_pki(workdir: Path) -> TestPki:
    """Make a CA, a server cert, a client cert and an unrelated CA in `workdir`; return their paths.

    Every cert is EC P-256 / SHA-256. The CA has basicConstraints CA:TRUE and keyUsage
    keyCertSign; the server cert is for CN=localhost with subjectAltName DNS:localhost,
    IP:127.0.0.1 and extendedKeyUsage serverAuth; the client cert is for CN=`CLIENT_CN` with
    extendedKeyUsage clientAuth. Both leaf certs are checked with `openssl verify -x509_strict`
    (what Python 3.13's default SSL context also demands) before this returns. Files:
    ca.crt/.key, server.crt/.key, client.crt/.key, other-ca.crt/.key, and the .ext files given
    to openssl. Keys are 0600, certs 0644. Raises RuntimeError when an openssl command fails.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _make_ca(workdir, "ca", CA_CN)
    other_ca_cert, _ = _make_ca(workdir, "other-ca", OTHER_CA_CN)
    server_cert, server_key = _make_leaf(
        workdir, "server", SERVER_CN, extensions=_SERVER_EXTENSIONS, ca_cert=ca_cert, ca_key=ca_key
    )
    client_cert, client_key = _make_leaf(
        workdir, "client", CLIENT_CN, extensions=_CLIENT_EXTENSIONS, ca_cert=ca_cert, ca_key=ca_key
    )
    verify_cert(ca_cert, server_cert, purpose="sslserver")
    verify_cert(ca_cert, client_cert, purpose="sslclient")
    return TestPki(
        ca_cert=ca_cert,
        ca_key=ca_key,
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_cert,
        client_key=client_key,
        other_ca_cert=other_ca_cert,
    )


def tls_listener_config(
    pki: TestPki, *, require_certificate: bool, use_identity_as_username: bool = False
) -> list[str]:
    """mosquitto.conf lines that make the test listener a TLS listener with `pki`'s server cert.

    With `require_certificate=True` a client must present a cert signed by `pki.ca_cert` (mutual
    TLS); without one the handshake fails. `use_identity_as_username=True` makes the client
    cert's CN (`pki.client_cn`) the MQTT username, which the broker log then shows as
    `u'skn-001'`. Pass the result (possibly plus `password_config(...)`) to `mosquitto_factory`.
    Beware: a client without `tls_set()` on this port gets neither an error nor a CONNACK.
    """
    lines = [
        f"cafile {pki.ca_cert}",
        f"certfile {pki.server_cert}",
        f"keyfile {pki.server_key}",
        f"require_certificate {'true' if require_certificate else 'false'}",
    ]
    if use_identity_as_username:
        if not require_certificate:
            raise ValueError("use_identity_as_username needs require_certificate=True")
        lines.append("use_identity_as_username true")
    return lines


def password_config(workdir: Path, users: dict[str, str]) -> list[str]:
    """Write `workdir`/passwd with `mosquitto_passwd -b` for `users` (name -> password).

    Returns the mosquitto.conf lines `password_file <path>` and `allow_anonymous false`: only
    these users, with these passwords, may connect (mosquitto 2.0 answers anyone else with
    CONNACK 135 "Not authorized"). An empty `users` locks everybody out. The file is 0600 and
    rewritten from scratch on every call with the same `workdir`.
    """
    for name in users:
        if not name or ":" in name:
            raise ValueError(f"mosquitto user names must be non-empty and without ':': {name!r}")
    mosquitto_passwd = find_tool("mosquitto_passwd")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "passwd"
    path.unlink(missing_ok=True)
    path.touch(mode=_KEY_MODE)
    path.chmod(_KEY_MODE)
    for name, password in users.items():
        _run_tool([mosquitto_passwd, "-b", str(path), name, password])
    path.chmod(_KEY_MODE)
    return [f"password_file {path}", "allow_anonymous false"]
