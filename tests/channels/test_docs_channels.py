"""The settings shown in docs/channels.md decode into each channel's config."""

import re
from pathlib import Path

from kaskad.channels.settings import config_from_env
from kaskad.plugins.manager import load_registry

DOC = Path(__file__).parents[2] / "docs" / "channels.md"


def test_every_documented_setting_decodes():
    blocks = re.findall(r"```sh\n(.*?)\n```", DOC.read_text(), re.S)
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
