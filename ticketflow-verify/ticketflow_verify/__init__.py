"""ticketflow-verify: check a ticketflow audit export offline, trusting nothing the desk hands you.

Standard library and ``cryptography`` only. ``chain`` specifies the hashes, trees and signatures;
``bundle`` checks an export directory; ``cli`` is the ``ticketflow-verify`` command.
"""

__version__ = "0.2.0"
