"""Messages a hostile or broken publisher may put straight into a coop's stream.

The deep event is signed the way an attacker's own client would sign it: its
canonical bytes are written out by hand, because the node's canonical encoder
(rightly) cannot walk 10,000 levels.
"""

from __future__ import annotations

import json

from blake3 import blake3
from nacl.signing import SigningKey

from icn.domain.events.envelope import signing_message
from icn.domain.identity.did import did_from_public_key

NOT_JSON = b"\xff\xfe this is not JSON, not even UTF-8 \x00"


def deep_signed_event(key: SigningKey, coop: str, depth: int = 10_000, ts: int = 1) -> bytes:
    """A validly signed event (id and signature hold) whose body nests ``depth`` levels."""
    author = did_from_public_key(bytes(key.verify_key))
    body = '{"a":' * depth + "{}" + "}" * depth
    head = f'{{"author":{json.dumps(author)},"body":{body},"coop":{json.dumps(coop)}'
    tail = f'"prev":null,"seq":1,"ts":{ts},"type":"ledger.EntryRecorded","v":1}}'
    unsigned = f"{head},{tail}".encode()
    event_id = blake3(unsigned).hexdigest()
    sig = key.sign(signing_message(event_id)).signature.hex()
    return f'{head},"id":"{event_id}",{tail[:-1]},"sig":"{sig}"}}'.encode()
