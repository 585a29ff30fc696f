"""The trust graph's picture: well-formed SVG, one circle per member and one line per edge,
sized by standing and coloured by class, the same file for the same graph."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from icn.interfaces.cli.trust_svg import COLOURS, render
from icn.projections.trust_views import EdgeView, GraphView, NodeView

NS = "{http://www.w3.org/2000/svg}"


def _graph() -> GraphView:
    nodes = [
        NodeView("did:icn:zA<&>", 600_000, "federated"),
        NodeView("did:icn:zB", 300_000, "partner"),
        NodeView("did:icn:zC", 0, "isolated"),
    ]
    edges = [
        EdgeView("did:icn:zA<&>", "did:icn:zB", "general", 900_000, 880_000, 1, None, "a" * 64),
        EdgeView("did:icn:zB", "did:icn:zC", "general", 100_000, 90_000, 2, None, "b" * 64),
    ]
    return GraphView("demo", "general", 0, nodes, edges)


def test_the_picture_has_every_member_and_attestation_and_is_stable() -> None:
    text = render(_graph())
    root = ET.fromstring(text)  # well-formed, the odd DID escaped
    circles = [c for c in root.iter(f"{NS}circle") if c.find(f"{NS}title") is not None]
    assert len(circles) == 3 and len(list(root.iter(f"{NS}line"))) == 2
    radius = {c.find(f"{NS}title").text.split(":")[2]: float(c.get("r")) for c in circles}  # type: ignore[union-attr]
    assert radius["zA<&>"] > radius["zB"] > radius["zC"] == 4.0
    assert {c.get("fill") for c in circles} == {
        COLOURS["federated"],
        COLOURS["partner"],
        COLOURS["isolated"],
    }
    assert render(_graph()) == text
