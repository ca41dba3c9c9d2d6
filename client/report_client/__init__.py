"""The report export service's command-line client: every call goes through the service's HTTP API."""
