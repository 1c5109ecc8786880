"""Settings package. ``config.settings.base`` is the one settings module for every
environment (driven only by environment variables); ``config.settings.test`` only
fills in test-friendly defaults for variables left unset, then loads base."""
