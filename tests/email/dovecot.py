"""A real Dovecot IMAP server for tests and benchmarks, run from a temporary directory.

Debian's ``dovecot-imapd`` started in the foreground (``dovecot -F -c conf``) with its own configuration:
listening on 127.0.0.1 only, on free ports (plain/STARTTLS and IMAPS), users from a static passwd-file,
maildirs in the temporary directory, and a self-signed certificate made at start (for 127.0.0.1 and
localhost): a client trusts it through ``SSL_CERT_FILE`` (:attr:`Dovecot.ca_file`).

Run as root, Dovecot's own ``dovecot`` and ``dovenull`` users run its processes (its login processes
refuse root) and own the maildirs; run as another user, that user runs everything.
"""

from __future__ import annotations

import datetime
import grp
import imaplib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def available() -> bool:
    return Path(DOVECOT).exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    """``start()`` / ``stop()``; ``add_user(name, password)``; ``client(user)`` logs in over plain IMAP."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tf-dovecot-"))
        self.root.chmod(0o755)  # Dovecot's unprivileged processes walk into it
        self.port, self.ssl_port = free_port(), free_port()
        self.users: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            self.internal_user, self.login_user, self.mail_user = "dovecot", "dovenull", "dovecot"
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            self.internal_user = self.login_user = self.mail_user = me
        self.ca_file = self.root / "cert.pem"

    # ------------------------------------------------------------------ set-up
    def add_user(self, name: str, password: str) -> None:
        self.users[name] = password
        lines = "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items())
        (self.root / "passwd").write_text(lines, encoding="utf-8")

    def _certificate(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = self.root / "key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)

    def _config(self) -> Path:
        mail_user = pwd.getpwnam(self.mail_user)
        group = grp.getgrgid(pwd.getpwnam(self.internal_user).pw_gid).gr_name
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.root / sub, mail_user.pw_uid, mail_user.pw_gid)
        conf = self.root / "dovecot.conf"
        conf.write_text(
            f"""base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
instance_name = tf-{self.port}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.ca_file}
ssl_key = <{self.root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {self.internal_user}
default_internal_group = {group}
default_login_user = {self.login_user}
first_valid_uid = {mail_user.pw_uid}
mail_location = maildir:{self.root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={self.root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""",
            encoding="utf-8",
        )
        return conf

    def start(self) -> None:
        if not self.users:
            self.add_user("desk", "desk-password")
        self._certificate()
        conf = self._config()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # readiness, not an assertion: the greeting is awaited
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ use
    def client(self, user: str = "desk") -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        client.login(user, self.users[user])
        return client

    def append(self, raw: bytes, user: str = "desk", folder: str = "INBOX") -> None:
        """Deliver one mail into the folder (IMAP APPEND), as a mail server would."""
        client = self.client(user)
        try:
            status, data = client.append(folder, None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND answered {status}: {data!r}")
        finally:
            client.logout()

    def seen_uids(self, user: str = "desk", folder: str = "INBOX") -> list[int]:
        client = self.client(user)
        try:
            client.select(folder, readonly=True)
            _, data = client.uid("SEARCH", "SEEN")
            return sorted(int(u) for u in b" ".join(d for d in data if d).split())
        finally:
            client.logout()
