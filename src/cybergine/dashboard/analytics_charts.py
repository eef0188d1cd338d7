"""The Analytics page's charts, laid out here and drawn by the template as inline SVG
(no script; presentation attributes and classes from analytics.css only, which the
Content-Security-Policy allows). Each chart carries its data as rows for the table
behind it, and a link per point to the conversations it counts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 720
HEIGHT = 220
LEFT = 48
RIGHT = 12
TOP = 16
BOTTOM = 44
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
# At most this many labels under the x axis; the table behind the chart has them all.
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: float
    label: str  # what the point is, in words (its tooltip)
    href: str | None
    series: int = 0


@dataclass
class Chart:
    bars: list[Bar] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    # A line chart's segments (points "x,y x,y"), broken where there is no value.
    lines: list[str] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = float(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10 x power


def _y(value: float, top: float) -> float:
    return TOP + PLOT_HEIGHT - (value / top) * PLOT_HEIGHT


def _y_ticks(top: float, label: str = "{:g}") -> list[Tick]:
    """0, the top, and halfway when it is a whole count (or the scale is a rate)."""
    parts = (0, 0.5, 1) if (top / 2).is_integer() or label != "{:g}" else (0, 1)
    return [Tick(LEFT - 6, _y(top * part, top), label.format(top * part)) for part in parts]


def _x_ticks(labels: list[str], centre: list[float]) -> list[Tick]:
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    return [
        Tick(centre[index], HEIGHT - BOTTOM + 16, labels[index])
        for index in range(0, len(labels), step)
    ]


def bars(
    values: list[float], labels: list[str], titles: list[str], hrefs: Sequence[str | None]
) -> Chart:
    """One bar per value, left to right."""
    top = nice_ceiling(max(values, default=0))
    slot = PLOT_WIDTH / max(len(values), 1)
    width = max(slot * 0.7, 1)
    chart = Chart(y_ticks=_y_ticks(top))
    centres = []
    for index, value in enumerate(values):
        x = LEFT + slot * index + (slot - width) / 2
        y = _y(value, top)
        centres.append(x + width / 2)
        chart.bars.append(
            Bar(x, y, width, TOP + PLOT_HEIGHT - y, value, titles[index], hrefs[index])
        )
    chart.x_ticks = _x_ticks(labels, centres)
    return chart


def grouped_bars(
    series: list[list[float]],
    labels: list[str],
    titles: list[list[str]],
    hrefs: Sequence[Sequence[str | None]],
) -> Chart:
    """Bars side by side per label, one per series (drawn with its own pattern)."""
    top = nice_ceiling(max((v for values in series for v in values), default=0))
    slot = PLOT_WIDTH / max(len(labels), 1)
    width = slot * 0.8 / max(len(series), 1)
    chart = Chart(y_ticks=_y_ticks(top))
    centres = []
    for index in range(len(labels)):
        start = LEFT + slot * index + slot * 0.1
        centres.append(start + slot * 0.4)
        for number, values in enumerate(series):
            y = _y(values[index], top)
            chart.bars.append(
                Bar(
                    start + width * number,
                    y,
                    width,
                    TOP + PLOT_HEIGHT - y,
                    values[index],
                    titles[number][index],
                    hrefs[number][index],
                    series=number,
                )
            )
    chart.x_ticks = [
        Tick(centre, HEIGHT - BOTTOM + 16, label)
        for centre, label in zip(centres, labels, strict=True)
    ]
    return chart


def rate_line(
    rates: list[float | None], labels: list[str], titles: list[str], hrefs: Sequence[str | None]
) -> Chart:
    """A line of rates (0 to 1) with a marker per point; no value, no marker, and the
    line breaks."""
    slot = PLOT_WIDTH / max(len(rates), 1)
    chart = Chart(y_ticks=_y_ticks(1, "{:.0%}"))
    centres = []
    segment: list[str] = []
    for index, rate in enumerate(rates):
        x = LEFT + slot * index + slot / 2
        centres.append(x)
        if rate is None:
            if segment:
                chart.lines.append(" ".join(segment))
            segment = []
            continue
        y = _y(rate, 1)
        segment.append(f"{x:.1f},{y:.1f}")
        chart.bars.append(Bar(x, y, 0, 0, rate, titles[index], hrefs[index]))
    if segment:
        chart.lines.append(" ".join(segment))
    chart.x_ticks = _x_ticks(labels, centres)
    return chart


# The hours-of-week heatmap's geometry: a label column, then 24 cells per weekday.
CELL_WIDTH = 26
CELL_HEIGHT = 24
HEAT_LEFT = 44
HEAT_TOP = 22
HEAT_LEVELS = 5


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    count: int
    level: int  # 0 (none) to HEAT_LEVELS - 1 (the busiest)
    label: str
    href: str | None


@dataclass
class Heatmap:
    cells: list[Cell]
    rows: list[Tick]
    columns: list[Tick]
    width: int = HEAT_LEFT + 24 * CELL_WIDTH + 4
    height: int = HEAT_TOP + 7 * CELL_HEIGHT + 4


def heatmap(
    grid: list[list[int]],
    row_labels: list[str],
    titles: list[list[str]],
    hrefs: Sequence[Sequence[str | None]],
) -> Heatmap:
    busiest = max((count for row in grid for count in row), default=0)
    cells = []
    for day, row in enumerate(grid):
        for hour, count in enumerate(row):
            level = (
                0
                if not count
                else 1 + min(HEAT_LEVELS - 2, int((count / busiest) * (HEAT_LEVELS - 1) - 1e-9))
            )
            cells.append(
                Cell(
                    HEAT_LEFT + hour * CELL_WIDTH,
                    HEAT_TOP + day * CELL_HEIGHT,
                    count,
                    level,
                    titles[day][hour],
                    hrefs[day][hour],
                )
            )
    return Heatmap(
        cells,
        rows=[
            Tick(HEAT_LEFT - 6, HEAT_TOP + day * CELL_HEIGHT + CELL_HEIGHT / 2 + 4, label)
            for day, label in enumerate(row_labels)
        ],
        columns=[
            Tick(HEAT_LEFT + hour * CELL_WIDTH + CELL_WIDTH / 2, HEAT_TOP - 8, f"{hour:02d}")
            for hour in range(0, 24, 3)
        ],
    )
