"""The Logger, Tracer and Metrics singletons, created once and shared by every module."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
