"""Personal data: per-customer encryption (crypto-shredding) and erasure."""
