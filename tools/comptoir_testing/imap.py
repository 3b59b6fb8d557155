"""A private Debian dovecot-imapd for tests: own config, maildir, static password, TLS, free ports.

Started by the ``imap_server`` fixture and stopped after; nothing of the system's dovecot is touched.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import ssl
import subprocess
import time
from pathlib import Path

from comptoir_testing import infra

DOVECOT = "/usr/sbin/dovecot"


class DovecotServer:
    def __init__(self, workdir: Path, password: str = "Mot-de-passe-imap-1"):
        self.workdir = Path(workdir)
        self.password = password
        self.port = infra.free_port()
        self.tls_port = infra.free_port()
        self.process: subprocess.Popen | None = None

    @property
    def cert_file(self) -> Path:
        return self.workdir / "cert.pem"

    def _make_cert(self) -> None:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(self.workdir / "key.pem"), "-out", str(self.cert_file),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        if not Path(DOVECOT).exists():
            raise infra.MissingComponent(
                "Debian dovecot-imapd is needed by the IMAP tests: `make test` installs it (SYSTEM_PACKAGES)."
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._make_cert()
        mail_user = pwd.getpwnam("dovecot")
        for sub in ("run", "mail", "home"):
            (self.workdir / sub).mkdir(exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.workdir / sub, mail_user.pw_uid, mail_user.pw_gid)
        os.chmod(self.workdir, 0o755)
        config = self.workdir / "dovecot.conf"
        config.write_text(
            f"""
base_dir = {self.workdir}/run
state_dir = {self.workdir}/run
log_path = {self.workdir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.workdir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{self.workdir}/mail/%u
first_valid_uid = {mail_user.pw_uid}
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = static
  args = password={self.password}
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={self.workdir}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
"""
        )
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=(self.workdir / "stdout.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not (infra.port_open("127.0.0.1", self.port) and infra.port_open("127.0.0.1", self.tls_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.workdir / "dovecot.log"
                raise RuntimeError(
                    f"dovecot did not start: {(self.workdir / 'stdout.log').read_text(errors='replace')}"
                    f"{log.read_text(errors='replace') if log.exists() else ''}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def url(self, user: str, folder: str = "INBOX", tls: bool = True) -> str:
        from urllib.parse import quote

        scheme, port = ("imaps", self.tls_port) if tls else ("imap", self.port)
        return f"{scheme}://{quote(user, safe='')}:{quote(self.password, safe='')}@127.0.0.1:{port}/{folder}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_file))

    def client(self, user: str) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=self.ssl_context(), timeout=30)
        client.login(user, self.password)
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a mail the way a mail server would: IMAP APPEND into the user's folder."""
        client = self.client(user)
        try:
            status, data = client.append(
                folder, None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            )
            if status != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
        finally:
            client.logout()

    def count(self, user: str, folder: str = "INBOX", criteria: str = "ALL") -> int:
        from comptoir_mail_ingest.sources import imap_utf7

        client = self.client(user)
        folder = f'"{imap_utf7(folder)}"'
        try:
            client.create(folder)
            client.select(folder)
            status, data = client.uid("SEARCH", None, criteria)
            return len((data[0] or b"").split())
        finally:
            client.logout()

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
