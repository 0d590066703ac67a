"""End-to-end scenarios on the booted test bed (issue 4)."""
