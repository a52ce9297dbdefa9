"""Migration import: historical tickets from other desks' event logs, with their original
times and people (``ticketflow import``): each ticket opened by a command, its history
recorded as imported facts (:class:`~ticketflow.commands.RecordImportedFacts`).

Formats: ``bpic2013`` (BPI Challenge 2013, Volvo IT incidents) and ``helpdesk``
(an Italian software company's help desk), both XES logs flattened to CSV.
"""

from ticketflow.importing.formats import FORMATS, get_format
from ticketflow.importing.plan import Format
from ticketflow.importing.runner import (
    ImportSummary,
    Progress,
    Source,
    import_file,
    import_source,
    load_source,
)

__all__ = [
    "FORMATS", "Format", "ImportSummary", "Progress", "Source", "get_format", "import_file",
    "import_source", "load_source",
]
