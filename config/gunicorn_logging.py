"""gunicorn's logger with ``LOG_FORMAT=json`` (``logger_class`` in config/gunicorn.py).

gunicorn turns its access log on whenever a logging configuration is given (our
``logconfig_dict``), ``--access-logfile`` or not. Here, as without one, only
``--access-logfile`` turns it on: ``make serve`` leaves it off (the app writes one
JSON access line per request, ``shiftboard.access``); given, gunicorn's access
lines are JSON on stderr like every other line (``logconfig_dict`` routes them
there, whatever file was named), with the request id (core.logging).
"""
from gunicorn.glogging import Logger


class JsonLogger(Logger):
    def access(self, resp, req, environ, request_time):
        if not self.cfg.accesslog:
            return
        super().access(resp, req, environ, request_time)
