"""The ``sms`` channel: Twilio's Messages API or SMS.ru's HTTP API."""

from kaskad import hookimpl
from kaskad_channels.sms.channel import SmsChannel


@hookimpl
def register_channels(register):
    register(SmsChannel())
