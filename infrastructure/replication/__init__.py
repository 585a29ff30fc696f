"""Replication transport: NATS JetStream streams, publishing and durable consumers.

One module per idea, so each can be read (and replaced) on its own:

- :mod:`.nats_server`: a local ``nats-server`` process (and a 3-server cluster
  for tests) started from the pinned wheel, stopped by PID;
- :mod:`.connection`: how the node connects (reconnect forever, quiet logs);
- :mod:`.subjects`: stream, subject, filter and consumer names;
- :mod:`.streams`: the per-coop stream and its duplicate window;
- :mod:`.publisher`: publish with ``Nats-Msg-Id`` = event id, retry while
  NATS is away;
- :mod:`.consumer`: a durable pull consumer that acks only after the caller
  committed.

Nothing here knows what an event means: callers hand over wire bytes and get
wire bytes back. Verification and appending stay in the application layer.
"""
