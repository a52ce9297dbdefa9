"""The email channel: parsing inbound mail, keeping it for audit, threading it into tickets."""
