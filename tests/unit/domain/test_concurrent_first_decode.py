"""Body Structs decoded for the first time by several threads at once must not crash.

The verifier threads (``icn.application.parallel``) inspect a batch's lines side by side,
and ``inspect`` converts each body into its Struct with ``msgspec.convert``; msgspec builds
a Struct's type information on first use. With msgspec 0.22 two threads doing that first
use at once crashed the process (SIGSEGV: one thread evaluating the annotations' forward
references while another read the half-built information), which is how a writer process
died at start when its first replicated batch arrived. msgspec 0.23 builds it safely; this
test fails on a release that does not.

The race needs Struct classes nobody has used yet, so the script makes a fresh module of
body-like Structs (postponed annotations, a nested Struct, a Literal, optional fields) per
round and lets three threads convert into it at once, with the GIL switching as often as it
can. In its own process: a crash must fail this test, not end the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

ROUNDS = 1000
"""msgspec 0.22 crashed within 1,000 rounds in every one of 6 runs (about 2 s each)."""

SCRIPT = textwrap.dedent(
    """
    import sys, threading, types
    import msgspec

    SOURCE = '''
    from __future__ import annotations
    from typing import Literal
    import msgspec

    class Leg(msgspec.Struct, forbid_unknown_fields=True):
        account: str
        amount: int
        memo: str | None = None

    class Body(msgspec.Struct, forbid_unknown_fields=True):
        legs: list[Leg]
        currency: str
        kind: Literal["transfer", "fee"] = "transfer"
        note: dict[str, int] | None = None
    '''
    BODY = {"legs": [{"account": "did:key:z6Mk", "amount": 150}], "currency": "hours"}

    sys.setswitchinterval(1e-6)
    for round in range(int(sys.argv[1])):
        name = f"bodies_{round}"
        module = types.ModuleType(name)
        sys.modules[name] = module
        exec(compile(SOURCE, name, "exec"), module.__dict__)
        start = threading.Barrier(3)

        def verifier(body_type=module.Body, start=start):
            start.wait()
            for _ in range(3):
                assert msgspec.convert(BODY, body_type).legs[0].amount == 150

        threads = [threading.Thread(target=verifier) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print("survived", msgspec.__version__)
    """
)


def test_three_threads_converting_into_new_structs_at_once_do_not_crash() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", SCRIPT, str(ROUNDS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stderr[-3000:]}"
    assert done.stdout.startswith("survived")
