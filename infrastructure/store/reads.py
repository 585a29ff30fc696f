"""Read-side table definitions that the node does not create itself."""

from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, Table, Text

stored_events = Table(
    "stored_events",
    MetaData(),
    Column("originator_id", Text, primary_key=True),
    Column("originator_version", BigInteger, primary_key=True),
    Column("topic", Text),
    Column("state", LargeBinary),
)
"""eventsourcing's table (created by its recorder): originator = ``coop/author``, version = seq."""
