"""The ``email`` channel: SMTP through aiosmtplib."""

from kaskad import hookimpl
from kaskad_channels.email.channel import EmailChannel


@hookimpl
def register_channels(register):
    register(EmailChannel())
