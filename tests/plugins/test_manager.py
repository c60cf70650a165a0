"""Loading plugins: entry points, the allow-list, and a broken plugin that must not break the rest."""

from typing import Annotated

import msgspec
import pytest

from kaskad import hookimpl
from kaskad.channels import Channel
from kaskad.plugins.manager import PluginError, load_registry


def test_builtins_load_through_entry_points():
    reg = load_registry()
    assert "test" in reg.channels and "noop" in reg.mechanics
    assert {"channel_test", "mechanic_noop"} <= set(reg.plugins)


def test_allow_list_limits_what_loads():
    reg = load_registry(allow=["mechanic_noop"])
    assert "noop" in reg.mechanics and "test" not in reg.channels


class BadMessage(msgspec.Struct):
    ttl: Annotated[int | None, msgspec.Meta(ge=0)] = None  # ge on an Optional: no JSON Schema


class BadChannel(Channel):
    name = "bad"
    message_type = BadMessage


class bad_plugin:  # a plugin module stand-in: pluggy accepts any namespace with hookimpls
    @staticmethod
    @hookimpl
    def register_channels(register):
        register(BadChannel())


def test_a_channel_with_an_unpublishable_schema_is_refused_by_name_and_the_rest_loads():
    reg = load_registry(allow=["channel_test"], extra=[bad_plugin])
    assert "bad" not in reg.channels and "test" in reg.channels
    assert len(reg.errors) == 1 and "'bad'" in reg.errors[0] and "message_type" in reg.errors[0]


class dup_plugin:
    @staticmethod
    @hookimpl
    def register_channels(register):
        from kaskad_channels.test import TestChannel

        register(TestChannel())


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(PluginError, match="registered twice"):
        load_registry(allow=["channel_test"], extra=[dup_plugin])
