"""The ``whatsapp`` channel: WhatsApp Business Cloud API."""

from kaskad import hookimpl
from kaskad_channels.whatsapp.channel import WhatsAppChannel


@hookimpl
def register_channels(register):
    register(WhatsAppChannel())
