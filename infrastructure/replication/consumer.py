"""A node's durable position in a coop's stream: fetch a batch, let the caller commit, then ack.

The consumer is durable (named after the node, stored by JetStream), so a
node that stops, crashes or loses NATS for a while continues where its last
*acknowledged* batch ended. Acks go out only after ``handle`` returned, and
``handle`` returns only after the caller committed the batch to its store:
a crash between the two redelivers the batch, which the receiver absorbs
(an event id it already has is a no-op). A ``handle`` that raises gets its
batch back (negative ack, then a growing pause), so nothing is lost and a
failing store is not hammered.

One message that makes ``handle`` raise every time (a bug, something nobody
foresaw) must not hold up the coop's stream for good: with a ``dead_letter``
callback, a failed batch is handed over again one message at a time, in
order, to find the message that fails; once it has failed on
``max_attempts`` deliveries (JetStream counts them, across restarts) it goes
to ``dead_letter`` and is terminated, and the stream goes on. Exceptions
listed as ``transient`` (the store or NATS away) are never the message's
fault and never dead-letter it.

Acks are explicit, one per message. Ack-all (one ack per batch) was tried
and measured cheaper, but it turns any message that was delivered and then
dropped before its batch was handled (a fetch cut short by a NATS restart)
into a silent loss: the next batch's ack covers it.

**In stream order, always.** With explicit acks a dropped message comes again,
but only after ``ack_wait``, and meanwhile JetStream hands out the messages
after it. A node applying them as they come would append one author's later
events before the dropped ones (they park, and are appended when released):
its log order, and so its Merkle root, would part from every other node's,
and a write judged at its stream position would not have seen what comes
before. So a consumer of a whole coop's stream (no ``filter_subject``: its
sequences come one by one) keeps the last sequence it handled; when a batch
skips past it, or the consumer has handed out messages beyond it (a crash
before the acks), it starts the durable consumer over just past that
sequence (:meth:`DurableCoopConsumer.ensure`). Found by the chaos e2e test:
after ``kill -9`` of a node mid-load, the batch in its hands came back ten
seconds late, behind a few hundred newer events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy

from icn.domain.events.timing import stream_time
from icn.infrastructure.replication.subjects import (
    TRUSTED_TIME_HEADER,
    coop_filter,
    durable_name,
    stream_name,
)

log = logging.getLogger(__name__)

_PAUSE_MIN_S = 0.1
_PAUSE_MAX_S = 5.0


class Delivered(NamedTuple):
    """One message handed to ``handle``: its subject, wire bytes and stream sequence."""

    subject: str
    data: bytes
    msg: Msg

    @property
    def stream_seq(self) -> int:
        """Parsed on demand: per message it showed up in profiles, and intake never asks."""
        return int(self.msg.metadata.sequence.stream)

    def trusted_ms(self, max_skew_ms: int) -> int:
        """The message's trusted time (:func:`~icn.domain.events.timing.stream_time`): the
        sequencing node's stamp, else JetStream's own timestamp of the message."""
        return stream_time(_stamped_ms(self.msg), _stream_ms(self.msg), max_skew_ms)


def _stamped_ms(msg: Msg) -> int | None:
    value = msg.headers.get(TRUSTED_TIME_HEADER) if msg.headers else None
    if value is None or not value.isdigit() or len(value) > 16:
        return None
    return int(value)


def _ack_field(reply: str | None, v1: int) -> int:
    """One numeric field of a JetStream ack subject, by its index in the old layout.

    The layouts (JetStream's ADR-15): ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream
    seq>.<consumer seq>.<timestamp ns>.<pending>`` (9 tokens), or the same with a domain
    and an account hash after ``ACK`` (11 tokens, and sometimes a 12th). Read here, as
    integers, because nats-py's parsed metadata turns the timestamp into a float.
    """
    tokens = reply.split(".") if reply else []
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        raise ValueError(f"not a JetStream ack subject: {reply!r}")
    return int(tokens[v1 if len(tokens) == 9 else v1 + 2])


def _stream_ms(msg: Msg) -> int:
    """JetStream's timestamp of the stored message, in whole ms."""
    return _ack_field(msg.reply, 7) // 1_000_000


Handler = Callable[[list[Delivered]], Awaitable[object] | object]
DeadLetterHandler = Callable[[Delivered, int, BaseException], Awaitable[object]]
"""Told (message, deliveries so far, the last exception); must record the message durably
before it returns: the message is terminated right after (never delivered again)."""
DEFAULT_MAX_ATTEMPTS = 5


class DurableCoopConsumer:
    """A durable pull consumer of one node on ``ICN_<coop>``, acking only after commit.

    ``ack_wait`` bounds how long a batch may take to commit before JetStream
    hands it out again; ``max_ack_pending`` leaves room for two batches.

    ``linger_s``: deliver a batch soon after its first message arrives. nats-py's
    ``fetch(n, timeout)`` on an idle consumer waits until ``n`` messages arrived or
    ``timeout`` passed, so under light load every event would wait up to the whole
    fetch timeout. With ``linger_s`` a lingering pull for *one* message waits for
    activity, and the rest of the batch is whatever arrives within ``linger_s``
    after it (a busy stream fills the batch at once).
    """

    def __init__(
        self,
        nc: Client,
        node: str,
        coop: str,
        *,
        batch: int = 500,
        fetch_timeout: float = 1.0,
        ack_wait: float = 60.0,
        max_ack_pending: int | None = None,
        filter_subject: str | None = None,
        dead_letter: DeadLetterHandler | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        transient: tuple[type[BaseException], ...] = (),
        pause_min: float = _PAUSE_MIN_S,
        pause_max: float = _PAUSE_MAX_S,
        linger_s: float | None = None,
    ) -> None:
        self._nc = nc
        self.linger_s = linger_s
        self.dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.transient: tuple[type[BaseException], ...] = (
            nats.errors.Error, TimeoutError, *transient,
        )  # fmt: skip
        self.pause_min, self.pause_max = pause_min, pause_max
        self._js: JetStreamContext = nc.jetstream()
        self.stream = stream_name(coop)
        self.durable = durable_name(node)
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.config = ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=-1,
            max_ack_pending=max_ack_pending or 2 * batch,
            filter_subject=filter_subject or coop_filter(coop),
        )
        self.in_order = filter_subject is None
        """Every message of the stream passes the filter, so a jump in the sequences means
        messages were delivered and dropped: start over past the last one handled."""
        self.handled: int | None = None
        """The last stream sequence ``handle`` returned for (None: not known yet)."""
        self._fresh = True
        """Just created or started over: the first message sets where the stream starts (a
        stream whose oldest messages are gone starts later than asked)."""

    async def run(self, handle: Handler, stop: asyncio.Event) -> None:
        """Deliver batches to ``handle`` and ack each after it returns, until ``stop`` is set.

        ``handle`` may be a coroutine function, or a plain function, which
        runs in a worker thread (the store is synchronous). Rides out NATS
        restarts: the connection reconnects and the durable position holds.
        """
        sub: JetStreamContext.PullSubscription | None = None
        pause = self.pause_min
        try:
            while not stop.is_set():
                try:
                    if sub is None:
                        await self.ensure()
                        sub = await self._js.pull_subscribe_bind(
                            durable=self.durable, stream=self.stream
                        )
                    msgs = await self._fetch(sub)
                except TimeoutError:
                    continue  # nothing new, or NATS away (the client reconnects meanwhile)
                except nats.errors.ConnectionClosedError:
                    raise
                except nats.errors.Error as exc:
                    log.warning("consumer %s on %s: %s; retrying", self.durable, self.stream, exc)
                    await _unsubscribe(sub)
                    sub = None
                    pause = await _pause(stop, pause, self.pause_max)
                    continue
                msgs, skipped = self._in_order(msgs)
                if await self._deliver(handle, msgs):
                    pause = self.pause_min
                else:
                    pause = await _pause(stop, pause, self.pause_max)
                if skipped:  # the next ensure() starts the consumer over past what was handled
                    await _unsubscribe(sub)
                    sub = None
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await self._nc.flush(timeout=max(1, int(self.fetch_timeout)))  # the last acks
            await _unsubscribe(sub)

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        """The next batch: as many as arrive within the fetch timeout, or (``linger_s``)
        the first one and whatever follows it within ``linger_s``."""
        if self.linger_s is None:
            return await sub.fetch(self.batch, timeout=self.fetch_timeout)
        msgs = await sub.fetch(1, timeout=self.fetch_timeout)
        if self.batch > 1:
            # A failure here (NATS going away) must not drop the message in hand: hand it
            # over now; the next fetch meets the failure and the consumer starts over.
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                msgs += await sub.fetch(self.batch - 1, timeout=self.linger_s)
        return msgs

    async def ensure(self) -> None:
        """Create the durable consumer, or update it (a changed ``ack_wait`` takes effect);
        start it over just past the last message handled if it has handed out more.

        Everything up to the consumer's ack floor was handled (acks follow commits), so
        that is where a new process stands. A consumer that delivered beyond it held a
        batch when its process died, or lost one in flight: JetStream would give those
        back only after ``ack_wait``, after newer ones.
        """
        info = await self._info()
        if info is None:
            await self._js.add_consumer(self.stream, self._starting_after(self.handled))
            self._fresh = True
            return
        floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
        handled = self.handled if self.handled is not None else floor
        delivered = int(info.delivered.stream_seq or 0) if info.delivered else 0
        if self.in_order and delivered > handled:
            log.info(
                "consumer %s on %s: delivered up to %d, handled %d: starting over after %d",
                self.durable, self.stream, delivered, handled, handled,
            )  # fmt: skip
            await self._js.delete_consumer(self.stream, self.durable)
            await self._js.add_consumer(self.stream, self._starting_after(handled))
            self.handled, self._fresh = handled, True
            return
        # An update may not change where the consumer starts: keep what it was created with.
        started = info.config
        await self._js.add_consumer(
            self.stream,
            dataclasses.replace(
                self.config,
                deliver_policy=started.deliver_policy,
                opt_start_seq=started.opt_start_seq,
            ),
        )
        self.handled = handled

    async def _info(self) -> ConsumerInfo | None:
        try:
            info: ConsumerInfo = await self._js.consumer_info(self.stream, self.durable)
        except nats.js.errors.NotFoundError:
            return None
        return info

    def _starting_after(self, handled: int | None) -> ConsumerConfig:
        if not handled:
            return self.config
        return dataclasses.replace(
            self.config, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=handled + 1
        )

    def _in_order(self, msgs: list[Msg]) -> tuple[list[Msg], bool]:
        """The messages that follow the last one handled without a hole (a message handled
        before may come again: a lost ack), and whether the batch skipped past a hole."""
        if not self.in_order or not msgs:
            return msgs, False
        if self._fresh or self.handled is None:
            self._fresh = False
            expected = _sequence(msgs[0])
        else:
            expected = self.handled + 1
        for i, m in enumerate(msgs):
            seq = _sequence(m)
            if seq == expected:
                expected += 1
            elif seq > expected:
                log.warning(
                    "consumer %s on %s: got %d after %d; starting over in stream order",
                    self.durable, self.stream, seq, expected - 1,
                )  # fmt: skip
                return msgs[:i], True
        return msgs, False

    async def _deliver(self, handle: Handler, msgs: list[Msg]) -> bool:
        """Hand one batch over; ack it if ``handle`` returned, nak it if it raised."""
        if not msgs:
            return True
        batch = [Delivered(m.subject, m.data, m) for m in msgs]
        try:
            await _call(handle, batch)
        except Exception as exc:
            if self.dead_letter is not None and not isinstance(exc, self.transient):
                return await self._one_by_one(handle, batch)
            log.exception("handler failed on %s seq %d..%d; will be redelivered",
                          self.stream, batch[0].stream_seq, batch[-1].stream_seq)  # fmt: skip
            await self._settle(msgs, ack=False)
            return False
        self._handled_up_to(max(_sequence(m) for m in msgs))
        await self._settle(msgs, ack=True)
        return True

    def _handled_up_to(self, seq: int) -> None:
        if self.handled is None or seq > self.handled:
            self.handled = seq

    async def _one_by_one(self, handle: Handler, batch: list[Delivered]) -> bool:
        """After a batch failed: each message on its own, in order, up to the one that fails.

        That one is dead-lettered and terminated if it failed on its last allowed
        delivery (then the rest follow); otherwise it and the rest are negatively
        acknowledged and come back, in order, after a pause.
        """
        assert self.dead_letter is not None
        for i, d in enumerate(batch):
            try:
                await _call(handle, [d])
            except Exception as exc:
                attempts = _deliveries(d.msg)
                if isinstance(exc, self.transient) or attempts < self.max_attempts:
                    log.warning("handler failed on %s seq %d (delivery %d of %d): %r",
                                self.stream, d.stream_seq, attempts, self.max_attempts,
                                exc)  # fmt: skip
                    await self._settle([x.msg for x in batch[i:]], ack=False)
                    return False
                try:
                    await self.dead_letter(d, attempts, exc)
                except Exception:
                    log.exception("dead letter of %s seq %d not recorded; will be redelivered",
                                  self.stream, d.stream_seq)  # fmt: skip
                    await self._settle([x.msg for x in batch[i:]], ack=False)
                    return False
                log.error("%s seq %d failed on %d deliveries (%r): dead-lettered, moving on",
                          self.stream, d.stream_seq, attempts, exc)  # fmt: skip
                with contextlib.suppress(nats.errors.Error):
                    await d.msg.term()
                self._handled_up_to(_sequence(d.msg))
                continue
            self._handled_up_to(_sequence(d.msg))
            await self._settle([d.msg], ack=True)
        return True

    async def _settle(self, msgs: list[Msg], *, ack: bool) -> None:
        """Ack (or nak) a batch.

        The acks are queued, not waited for: they leave on the same connection
        before the next pull request, so the server sees them first anyway, and
        a flush (a round trip) per batch was an eighth of a receiving node's
        cycle at 1,000 events/s. If NATS is away, the acks may be lost: the
        batch then comes again after ``ack_wait``, and the receiver finds its
        events already committed. :meth:`run` flushes once when it stops.
        """
        try:
            for m in msgs:
                await (m.ack() if ack else m.nak())
        except nats.errors.Error as exc:
            log.warning(
                "%s not confirmed (%s): the batch may come again", "acks" if ack else "naks", exc
            )

    async def pending(self) -> int:
        """The consumer's lag: messages not yet delivered plus delivered but not yet acked."""
        info = await self._js.consumer_info(self.stream, self.durable)
        return (info.num_pending or 0) + (info.num_ack_pending or 0)


async def _call(handle: Handler, batch: list[Delivered]) -> None:
    """Run ``handle`` on ``batch``: a coroutine function here, a plain one in a thread."""
    if inspect.iscoroutinefunction(handle):
        await handle(batch)
    else:
        result = await asyncio.to_thread(handle, batch)
        if inspect.isawaitable(result):
            await result


def _sequence(msg: Msg) -> int:
    """The message's stream sequence (0 for a message that is not JetStream's: tests)."""
    try:
        return _ack_field(msg.reply, 5)
    except ValueError:
        return 0


def _deliveries(msg: Msg) -> int:
    """How many times JetStream delivered ``msg`` (this time included)."""
    try:
        return int(msg.metadata.num_delivered)
    except Exception:  # not a JetStream message (tests): count this delivery only
        return 1


async def _pause(stop: asyncio.Event, seconds: float, longest: float = _PAUSE_MAX_S) -> float:
    """Wait ``seconds`` unless ``stop`` is set first; return the next, longer pause."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return min(seconds * 2, longest)


async def _unsubscribe(sub: JetStreamContext.PullSubscription | None) -> None:
    if sub is not None:
        # If the connection is gone, so is the subscription on the server's side.
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()
