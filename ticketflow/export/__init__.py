"""Exports of the event log for outside tools (``ticketflow export``)."""

from ticketflow.export.xes import XesSummary, export_xes, write_xes

__all__ = ["XesSummary", "export_xes", "write_xes"]
