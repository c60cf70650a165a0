"""The settings shown in docs/channels.md decode into each channel's config."""

import re
from pathlib import Path

from kaskad.channels.settings import config_from_env
from kaskad.plugins.manager import load_registry

DOC = Path(__file__).parents[2] / "docs" / "channels.md"


def test_every_documented_setting_decodes():
    blocks = [b for b in re.findall(r"```sh\n(.*?)\n```", DOC.read_text(), re.S)
              if all(re.match(r"KASKAD_\w+=", line) for line in b.splitlines())]
    assert len(blocks) == 3
    channels = load_registry().channels
    for block in blocks:
        env = dict(line.split("=", 1) for line in block.splitlines())
        name = next(iter(env)).split("_")[1].lower()
        cfg = config_from_env(channels[name], env)
        assert cfg is not None, name
        for var, value in env.items():
            field = var.removeprefix(f"KASKAD_{name.upper()}_").lower()
            assert str(getattr(cfg, field)).lower() == value.lower(), var


def test_the_documented_delivery_settings_decode():
    from kaskad.delivery.policy import DeliverySettings

    (block,) = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.S)
    s = DeliverySettings.from_env({"KASKAD_DELIVERY": block})
    assert s.caps["sms"].per_day == 1 and s.total.per_week == 5 and s.quiet_hours.start == "21:00"


def test_the_documented_bounce_request_is_what_the_server_accepts(runtime, client):
    """The curl line of "Bounces": its path and header, with a real DSN sample, are accepted."""
    from kaskad.channels.settings import configure_channels

    (curl,) = [b for b in re.findall(r"```sh\n(.*?)\n```", DOC.read_text(), re.S) if b.startswith("curl")]
    header = re.search(r'-H "([\w-]+): \$(KASKAD_\w+)"', curl)
    path = re.search(r"https://kaskad\.example(/\S+)", curl).group(1)
    configure_channels(runtime, {header.group(2): "s3cret"})
    sample = (Path(__file__).parent / "dsn" / "postfix-user-unknown.eml").read_bytes()
    dsn = sample.replace(b"{recipient}", b"gone@example.com").replace(b"{headers}", b"Message-ID: <kaskad.run.1.mail@x.example>")
    r = client.post(path, content=dsn, headers={header.group(1): "s3cret"})
    assert r.status_code == 200 and r.json() == {"received": 1, "recorded": 0}  # no such message here: nothing stored
    assert client.post(path, content=dsn, headers={header.group(1): "wrong"}).status_code == 403
