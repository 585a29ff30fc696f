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
  committed;
- :mod:`.link`: a connection that exists before it is connected (parts are
  built before the event loop runs);
- :mod:`.sequencer` and :mod:`.write_gates`: the node's own writes, published
  after a stream position, once a coop takes writes;
- :mod:`.coop_worker`: one served coop's stream, relay and consumer;
  :mod:`.supervisor` runs them all, with :mod:`.config`'s settings.

Nothing here knows what an event means: the transport takes and gives wire
bytes, and the workers hand them to the application's intake. Verification
and appending stay in the application layer.
"""
