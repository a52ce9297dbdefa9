"""HTTP API (FastAPI): validates input, builds commands, calls ticketflow.application, maps errors."""
