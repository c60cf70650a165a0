import pytest

pytest_plugins = ["kaskad.testing.fixtures"]


@pytest.fixture
def engine(runtime):
    """The embedded engine on the test's runtime, drained by hand; the test channel starts empty."""
    from kaskad.testing.engine import EngineDriver
    from kaskad_channels import test as test_channel

    test_channel.reset()
    driver = EngineDriver(runtime)
    yield driver
    driver.close()
    test_channel.reset()
