"""Charts as inline SVG, drawn on the server: no script, no CDN, nothing to build."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 180
LEFT, BOTTOM, TOP = 40, 26, 10
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")


def _frame(title: str, peak: int, width: int, height: int) -> list[str]:
    """The SVG start, its accessible title, and the y axis with its peak value."""
    plot_bottom = height - BOTTOM
    return [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{plot_bottom}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{width}" y2="{plot_bottom}" class="axis"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end" class="tick">{peak}</text>',
        f'<text x="{LEFT - 4}" y="{plot_bottom}" text-anchor="end" class="tick">0</text>',
    ]


def _y(value: float, peak: int, height: int) -> float:
    return height - BOTTOM - (height - BOTTOM - TOP) * value / peak


def bars(title: str, values: Sequence[tuple[str, int]], width: int = WIDTH, height: int = HEIGHT,
         label_every: int = 1) -> Markup:
    """One bar per (label, value); every `label_every`-th label is written under its bar."""
    peak = max([v for _, v in values] + [1])
    step = (width - LEFT) / max(len(values), 1)
    parts = _frame(title, peak, width, height)
    for i, (label, value) in enumerate(values):
        x, y = LEFT + i * step + step * 0.1, _y(value, peak, height)
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}" '
                     f'height="{height - BOTTOM - y:.1f}"><title>{escape(label)}: {value}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + step * 0.4:.1f}" y="{height - 8}" text-anchor="middle" class="tick">'
                         f'{escape(label)}</text>')
    return Markup("".join(parts) + "</svg>")


def lines(title: str, x_labels: Sequence[str], series: dict[str, Sequence[int]], width: int = WIDTH,
          height: int = HEIGHT, label_every: int = 10) -> Markup:
    """One polyline per named series over `x_labels`, with a legend."""
    peak = max([v for values in series.values() for v in values] + [1])
    step = (width - LEFT) / max(len(x_labels) - 1, 1)
    parts = _frame(title, peak, width, height)
    for i, label in enumerate(x_labels):
        if i % label_every == 0:
            parts.append(f'<text x="{LEFT + i * step:.1f}" y="{height - 8}" text-anchor="middle" class="tick">'
                         f'{escape(label)}</text>')
    for n, (name, values) in enumerate(sorted(series.items())):
        colour = PALETTE[n % len(PALETTE)]
        points = " ".join(f"{LEFT + i * step:.1f},{_y(v, peak, height):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                     f'<title>{escape(name)}: {sum(values)}</title></polyline>')
        parts.append(f'<text x="{LEFT + 8 + 150 * n}" y="{TOP + 12}" fill="{colour}" class="legend">'
                     f'{escape(name)} ({sum(values)})</text>')
    return Markup("".join(parts) + "</svg>")
