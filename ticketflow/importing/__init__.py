"""Migration import: historical tickets from other desks' logs, with their original times and
people (``ticketflow import``): each ticket opened by a command, its history recorded as
imported facts (:class:`~ticketflow.commands.RecordImportedFacts`).

One engine (:mod:`ticketflow.importing.engine`) driven by a mapping file
(:mod:`ticketflow.importing.mapping`); presets ship as mapping files: ``bpic2013`` (BPI
Challenge 2013, Volvo IT incidents), ``helpdesk`` (an Italian software company's help desk),
``servicenow`` (incident history, one row per update) and ``xes`` (XES XML logs).
"""

from ticketflow.importing.engine import Format
from ticketflow.importing.formats import FORMATS, get_format, mapped_format
from ticketflow.importing.mapping import ImportMapping, load_mapping, load_preset
from ticketflow.importing.runner import (
    DryRun,
    ImportSummary,
    Progress,
    SampleTicket,
    Source,
    dry_run,
    import_file,
    import_source,
    load_source,
    write_rejects,
)
from ticketflow.importing.xes import Reject

__all__ = [
    "FORMATS", "DryRun", "Format", "ImportMapping", "ImportSummary", "Progress", "Reject", "SampleTicket", "Source",
    "dry_run", "get_format", "import_file", "import_source", "load_mapping", "load_preset", "load_source",
    "mapped_format", "write_rejects",
]
