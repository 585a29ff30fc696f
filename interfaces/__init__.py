"""Ways in: the ``icn`` CLI, the HTTP API and the composition root that wires them."""
