"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives.

``SmtpSink`` is for tests and benchmarks of anything that sends email::

    with SmtpSink() as sink:
        ...send to 127.0.0.1:sink.port...
        mail = sink.parsed()[0]          # an email.message.EmailMessage

``auth=("user", "password")`` makes it require that login (AUTH PLAIN/LOGIN;
without ``starttls`` over plain text, as on a local relay); ``starttls=True``
offers and requires STARTTLS with a self-signed certificate for 127.0.0.1
(login only after it); ``keep=False`` only counts messages
(for benchmarks). ``refuse`` maps a recipient to an SMTP reply
(``{"gone@example.com": "550 5.1.1 no such user"}``) to test refusals.
It offers PIPELINING (RFC 2920), as Postfix, Exim and the big providers do;
``pipelining=False`` makes it a server that does not, for the one-command-at-a-time path.
"""

from __future__ import annotations

import email
import threading
from email import policy
from email.message import EmailMessage

from kaskad.testing.servers import free_port


class SmtpSink:
    def __init__(self, auth: tuple[str, str] | None = None, keep: bool = True, refuse: dict[str, str] | None = None,
                 port: int | None = None, starttls: bool = False, pipelining: bool = True, loop=None) -> None:
        self.auth, self.keep, self._port, self.starttls, self.pipelining = auth, keep, port, starttls, pipelining
        self._loop = loop  # the event loop the server runs on (e.g. a uvloop one); a fresh asyncio loop by default
        self.refuse: dict[str, str] = dict(refuse or {})
        #: (mail_from, rcpt_tos, raw bytes, authenticated?) per message received.
        self.messages: list[tuple[str, list[str], bytes, bool]] = []
        self.count = 0
        self.connections = 0
        self._lock = threading.Lock()
        self.controller = None

    @property
    def port(self) -> int:
        return self.controller.port

    def parsed(self) -> list[EmailMessage]:
        return [email.message_from_bytes(raw, policy=policy.default) for _, _, raw, _ in self.messages]

    # aiosmtpd handler hooks
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            # aiosmtpd reads its input as a stream, one command after another, and answers
            # each in order: exactly what RFC 2920 asks of a server; it just does not say so.
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.count += 1
            if self.keep:
                self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content, bool(session.authenticated)))
        return "250 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def start(self) -> "SmtpSink":
        from aiosmtpd.controller import Controller

        sink = self

        class Counting(Controller):
            def factory(self):
                sink.connections += 1
                return super().factory()

        kw = {"authenticator": self._authenticate, "auth_require_tls": self.starttls} if self.auth else {}
        if self.starttls:
            kw.update(tls_context=_self_signed_context(), require_starttls=True)
        self.controller = Counting(self, hostname="127.0.0.1", port=self._port or free_port(), loop=self._loop, **kw)
        self.controller.start()
        self.connections = 0  # the controller's own start-up probe does not count
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _self_signed_context():
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    import datetime
    import ipaddress
    import ssl
    import tempfile
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="kaskad-smtp-tls-"))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context
