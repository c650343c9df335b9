"""adapters layer of proxnix."""
