"""What-if: replay a past period under other routing rules, SLA policies or calendars, and compare.

See :mod:`ticketflow.whatif.replay` for the semantics, :mod:`ticketflow.whatif.candidate` for the
candidate file's schema and :mod:`ticketflow.whatif.report` for the comparison.
"""

from ticketflow.whatif.candidate import Candidate, build_candidate, read_candidate_file
from ticketflow.whatif.report import Period, run_whatif, to_csv, to_json

__all__ = ["Candidate", "Period", "build_candidate", "read_candidate_file", "run_whatif", "to_csv", "to_json"]
