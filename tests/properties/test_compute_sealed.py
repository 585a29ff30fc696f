"""No answer judged was committed after a reveal: whatever order executors commit and reveal
in, and however the coop's deadlines drop and re-place them, once the first answer of a task
is revealed nobody joins it, and every answer the rules keep was committed before that."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from support.compute_story import (
    EXECUTORS,
    answer,
    commit,
    compute_coop,
    name_of,
    record,
    reveal,
    submit,
)

from icn.domain.compute import deadlines
from icn.domain.compute.results import Answer

OPS = st.lists(
    st.tuples(
        st.sampled_from(["commit", "commit", "reveal", "reveal", "replace"]),
        st.integers(0, 3),
        st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(OPS, st.integers(1, 3))
def test_every_judged_answer_was_committed_before_the_first_reveal(
    ops: list[tuple[str, int, bool]], replicas: int
) -> None:
    c = compute_coop()
    event = submit(c, replicas=replicas)
    c.ok(event)
    chosen: dict[str, Answer] = {}
    sealed_with: set[str] | None = None  # who had committed when the first answer came out
    for op, i, lie in ops:
        t = record(c, event.id)
        if t.state != "running":
            break
        fresh = [n for n in t.assigned if n not in t.commitments]
        waiting = [n for n in t.assigned if n in t.commitments and n not in t.answers]
        if op == "commit" and fresh:
            node = name_of(c, fresh[i % len(fresh)])
            chosen.setdefault(node, answer(b"lie" if lie else b"out"))
            c.apply(commit(c, event.id, node, chosen[node]))
        elif op == "reveal" and waiting:
            node = name_of(c, waiting[i % len(waiting)])
            out = b"lie" if chosen[node] == answer(b"lie") else b"out"
            c.apply(reveal(c, event.id, node, chosen[node], out))
        elif op == "replace":
            body = {"task": event.id, "attempt": t.replacements}
            due = max(c.s.ts + 1, deadlines.due_ms(t))
            if due < deadlines.expires_ms(t):
                c.apply(c.s.event("coop", "compute.TaskReplaced", body, ts=due))
        after = record(c, event.id)
        if sealed_with is None and after.answers:  # this op was the first reveal
            sealed_with, placed = set(after.commitments), set(after.assigned)
            assert sealed_with == placed  # every placed executor had committed
        if sealed_with is not None:
            assert set(after.answers) <= sealed_with
            assert set(after.assigned) <= placed  # nobody joined after the first reveal
            assert all(name_of(c, n) in EXECUTORS for n in after.assigned)
        if after.state in ("agreed", "unresolved"):
            assert set(after.answers) == set(after.assigned)
