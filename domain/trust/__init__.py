"""The web of trust: signed attestations, and the standing decisions read.

Two scores with two purposes. The path score (:mod:`.paths`) tells a person
how they know someone; a ring of Sybils vouching for each other gets full
marks from it, so nothing is ever permitted by it. Standing (:mod:`.standing`)
is EigenTrust with a pre-trusted set, in integer fixed point, published in
coop-signed epochs whose digest anyone recomputes; classes (:mod:`.classes`)
turn it into words and gate credit, rate limits and governance.
"""
