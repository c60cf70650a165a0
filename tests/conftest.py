pytest_plugins = ["kaskad.testing.fixtures"]
