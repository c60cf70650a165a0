"""Analytics: attribution, figures per flow/node/message/channel, uplift, base health."""
