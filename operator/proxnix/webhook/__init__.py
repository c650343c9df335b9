"""webhook layer of proxnix."""
