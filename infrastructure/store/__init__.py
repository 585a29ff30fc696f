"""The event store: eventsourcing's recorders plus the log tables that ride in the same transaction."""
