"""Double-entry mutual credit: every balance is recomputable from the log alone."""
