"""Built-in trackers (``--log-to``)."""
