"""The event store: eventsourcing's recorders plus the log tables of the same transaction."""
