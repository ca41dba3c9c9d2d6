"""The report export service's command-line client: every call goes through the service's HTTP API."""

__version__ = "0.1.0"
