"""A scheduled function that answers with what it was given: the event, its environment, its context."""

import os
from typing import Any


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return {"event": event, "greeting": os.environ["GREETING"], "function_name": context.function_name}
