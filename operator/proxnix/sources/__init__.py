"""sources layer of proxnix."""
