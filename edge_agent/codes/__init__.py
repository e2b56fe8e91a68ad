"""Pack codes: GB/T 34014 codes, EU battery-passport identifiers (pure functions, no I/O)."""
