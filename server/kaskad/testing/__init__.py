"""Test kit for Kaskad and its plugin authors: real servers on loopback, fakes, helpers."""
