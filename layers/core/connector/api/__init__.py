"""The HTTP API: ``ApiApp`` (app.py) with its routers (routes/), models and error answers."""

from connector.api.app import ApiApp
from connector.api.problems import ApiProblem

__all__ = ["ApiApp", "ApiProblem"]
