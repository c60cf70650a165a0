"""The plugin host: contracts and loading. The contract itself is :mod:`kaskad.hookspecs`."""
