"""Governance: domains with voting rules, proposals, votes and delegation, recountable tallies.

Every vote is a signed event and every close a coop-signed tally that any
node or auditor recounts from the ballots alone (:mod:`.tally`); an accepted
proposal is executed by the coop's DID exactly once (:mod:`.rules`).
"""
