"""An example channel plugin: registers the ``webhook`` channel."""

from kaskad import hookimpl
from kaskad_example_channel.channel import WebhookChannel


@hookimpl
def register_channels(register):
    register(WebhookChannel())
