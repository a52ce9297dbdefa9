"""Read models built from the event log (queues, timeline, customer 360, audit trail, reports, search)."""
