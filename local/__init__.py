"""The local stack: the whole service on 127.0.0.1 from template.yaml, with no AWS account and no Docker.

Run it with ./dev run (python -m local run); see local.stack for what it starts. Function
processes import this package too, so it imports nothing itself.
"""
