"""The Live page: the configured function's output, charted."""
