"""``icn trust graph --svg``: the live graph of one context as a picture, with no dependency.

Members sit on a circle, grouped by class (most trusted first) and by standing
within a class, so the picture of the same graph is the same file every time;
a node's area follows its standing, its colour its class. Edges are straight
lines, darker the higher their score, with an arrowhead at the subject. Each
node and edge carries a ``<title>`` (the DID, the score), which browsers show
on hover.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape, quoteattr

from icn.projections.trust_views import GraphView, NodeView

SIZE = 800
MARGIN = 80
COLOURS = {
    "federated": "#1b7837",
    "partner": "#5aae61",
    "known": "#f1a340",
    "isolated": "#b2182b",
}
ORDER = ("federated", "partner", "known", "isolated")


def _radius(node: NodeView) -> float:
    """4 px for no standing, up to 24 px for all of it; area proportional to standing."""
    return 4 + 20 * math.sqrt(node.standing_ppm / 1_000_000)


def _placed(nodes: list[NodeView]) -> dict[str, tuple[float, float]]:
    ranked = sorted(nodes, key=lambda n: (ORDER.index(str(n.trust_class)), -n.standing_ppm, n.did))
    centre, ring = SIZE / 2, SIZE / 2 - MARGIN
    step = 2 * math.pi / max(1, len(ranked))
    return {
        n.did: (centre + ring * math.sin(i * step), centre - ring * math.cos(i * step))
        for i, n in enumerate(ranked)
    }


def render(graph: GraphView) -> str:
    """The SVG document of ``graph``."""
    where = _placed(graph.nodes)
    size = {n.did: _radius(n) for n in graph.nodes}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}"'
        f' viewBox="0 0 {SIZE} {SIZE}" font-family="sans-serif" font-size="11">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6"'
        ' markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"'
        ' fill="#555"/></marker></defs>',
        f'<text x="12" y="20" font-size="14">{escape(graph.coop)} · {escape(graph.context)}'
        f" · {len(graph.nodes)} members · {len(graph.edges)} attestations</text>",
    ]
    for e in graph.edges:
        if e.truster not in where or e.subject not in where:
            continue
        (x1, y1), (x2, y2) = where[e.truster], where[e.subject]
        length = math.hypot(x2 - x1, y2 - y1) or 1.0
        cut = size[e.subject] + 2
        x2, y2 = x2 - (x2 - x1) * cut / length, y2 - (y2 - y1) * cut / length
        opacity = 0.15 + 0.75 * e.weight_ppm / 1_000_000
        title = escape(f"{e.truster} → {e.subject}: {e.score_ppm} ppm ({e.weight_ppm} now)")
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555"'
            f' stroke-opacity="{opacity:.2f}" marker-end="url(#head)"><title>{title}</title></line>'
        )
    for n in graph.nodes:
        x, y = where[n.did]
        colour = COLOURS.get(str(n.trust_class), "#999")
        title = escape(f"{n.did}: {n.standing_ppm} ppm, {n.trust_class}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size[n.did]:.1f}" fill={quoteattr(colour)}'
            f' stroke="#222"><title>{title}</title></circle>'
        )
    legend_y = SIZE - 16
    for i, cls in enumerate(ORDER):
        x = 12 + i * 110
        parts.append(f'<circle cx="{x + 6}" cy="{legend_y - 4}" r="6" fill="{COLOURS[cls]}"/>')
        parts.append(f'<text x="{x + 16}" y="{legend_y}">{cls}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
