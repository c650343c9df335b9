"""api layer of proxnix."""
