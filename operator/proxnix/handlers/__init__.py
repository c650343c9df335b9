"""handlers layer of proxnix."""
