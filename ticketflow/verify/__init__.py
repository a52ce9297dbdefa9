"""The offline verifier lives in its own distribution, ``ticketflow-verify`` (import name
``ticketflow_verify``); ``python -m ticketflow.verify`` is a thin alias of it."""
