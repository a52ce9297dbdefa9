"""Staff accounts for the console: argon2id password hashes and sign-in sessions, kept outside
the event log (the log records that a password was set, never the hash)."""
