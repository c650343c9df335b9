"""reconcile layer of proxnix."""
