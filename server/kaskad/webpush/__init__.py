"""Web push: the subscriptions a shop's visitors give us and the signed links their notifications carry.

The sending channel is the ``webpush`` plugin (``kaskad_channels.webpush``);
this package holds what core's API needs without importing the plugin.
"""
