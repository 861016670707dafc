"""The accountant's answer: one :class:`LayerRow` per layer, the :class:`Summary` of them, its formats.

Text, markdown, CSV and JSON are rendered from the same rows; receptive fields are numbers in
JSON (one per spatial dimension) and short text in the tables.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from trainlab.convnets.receptive_field import ReceptiveField

__all__ = ["CONVENTIONS", "LayerRow", "Summary"]

CONVENTIONS = (
    "neurons = output activations of a layer; parameters = weights + biases; "
    "connections = multiply-accumulates without biases, plus pooling windows and upsampling links; "
    "activations, batch norm and adds belong to the layer before (no neurons or connections)"
)


@dataclass
class LayerRow:
    """One layer (a leaf module call, or a functional operation in a container's forward)."""

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    neurons: int = 0
    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    connections: int = 0
    receptive_field: ReceptiveField | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON: the receptive field as numbers, one per spatial dimension
        (``rf_size`` is the whole input for a global field, whose local size is ``rf_local_size``);
        None where the layer has no field."""
        rf = self.receptive_field
        numbers = rf.as_numbers() if rf is not None else {
            "rf_size": None, "rf_jump": None, "rf_start": None, "rf_status": None}
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "neurons": self.neurons,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "connections": self.connections,
            **numbers,
            "note": self.note,
        }

    def as_text_dict(self) -> dict[str, Any]:
        """As :meth:`as_dict` with the field as short text (CSV): '30', '~12', '431 (hull)'."""
        rf = self.receptive_field
        size, jump, start = rf.describe() if rf is not None else ("", "", "")
        d = self.as_dict()
        d.update(rf_size=size, rf_jump=jump, rf_start=start, rf_status=rf.status if rf is not None else "",
                 output_shape="x".join(map(str, self.output_shape)) if self.output_shape else "")
        d.pop("rf_local_size", None)
        return d


_COLUMNS = (
    "name",
    "type",
    "output_shape",
    "neurons",
    "params",
    "trainable_params",
    "macs",
    "connections",
    "rf_size",
    "rf_jump",
    "rf_start",
    "rf_status",
    "note",
)


@dataclass
class Summary:
    """The accountant's answer: rows, totals, and what could not be counted."""

    rows: list[LayerRow]
    input_shapes: list[tuple[int, ...]]
    ignore: frozenset[str] = frozenset()
    not_counted: list[str] = field(default_factory=list)
    #: container modules whose output has a receptive field: name -> (output shape, field, number of
    #: rows made before it finished), in the order they finished
    block_fields: dict[str, tuple[tuple[int, ...], ReceptiveField, int]] = field(default_factory=dict)

    @property
    def total_neurons(self) -> int:
        return sum(r.neurons for r in self.rows)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def total_connections(self) -> int:
        return sum(r.connections for r in self.rows)

    def totals(self) -> dict[str, int]:
        return {
            "neurons": self.total_neurons,
            "params": self.total_params,
            "trainable_params": self.trainable_params,
            "macs": self.total_macs,
            "connections": self.total_connections,
        }

    def layers(self) -> list[LayerRow]:
        """Rows that are layers in the course's sense: they have neurons or parameters."""
        return [r for r in self.rows if r.neurons or r.params]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shapes": [list(s) for s in self.input_shapes],
            "ignore": sorted(self.ignore),
            "conventions": CONVENTIONS,
            "rows": [r.as_dict() for r in self.rows],
            "totals": self.totals(),
            "not_counted": list(self.not_counted),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow(r.as_text_dict())
        t = self.totals()
        writer.writerow(
            {
                "name": "total",
                "neurons": t["neurons"],
                "params": t["params"],
                "trainable_params": t["trainable_params"],
                "macs": t["macs"],
                "connections": t["connections"],
            }
        )
        return buf.getvalue()

    def text_rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and formatted cells (thousands separators) for text, markdown and rich tables."""
        header = [
            "layer",
            "type",
            "output",
            "neurons",
            "params",
            "MACs",
            "connections",
            "RF",
            "jump",
            "start",
        ]
        body = []
        for r in self.rows:
            rf = r.receptive_field.describe() if r.receptive_field is not None else ("—", "—", "—")
            shape = "×".join(map(str, r.output_shape)) if r.output_shape else "—"
            params = f"{r.params:,}" + (
                "" if r.trainable_params == r.params else f" ({r.trainable_params:,} trainable)"
            )
            body.append(
                [
                    r.name + (f" [{r.note}]" if r.note else ""),
                    r.type,
                    shape,
                    f"{r.neurons:,}",
                    params,
                    f"{r.macs:,}",
                    f"{r.connections:,}",
                    *rf,
                ]
            )
        t = self.totals()
        body.append(
            [
                "total",
                "",
                "",
                f"{t['neurons']:,}",
                f"{t['params']:,}",
                f"{t['macs']:,}",
                f"{t['connections']:,}",
                "",
                "",
                "",
            ]
        )
        return header, body

    def footer(self) -> list[str]:
        lines = [f"conventions: {CONVENTIONS}"]
        if self.ignore:
            lines.append("ignored in parameter counts: " + ", ".join(sorted(self.ignore)))
        statuses = {r.receptive_field.status for r in self.rows if r.receptive_field is not None}
        notes = [text for status, text in (
            ("approximate", "~ approximate (after upsampling)"),
            ("misaligned", "(hull) branches with different centres: the hull of their fields"),
            ("global", "(all; local n) every unit sees the whole input (a gate, global statistics); "
                       "n is the local path's field"),
            ("varies", "varies: no single size, jump and start"),
        ) if status in statuses]
        if notes:
            lines.append("receptive fields: " + "; ".join(notes))
        if self.not_counted:
            lines.append("not counted: " + "; ".join(self.not_counted))
        return lines

    def to_markdown(self) -> str:
        header, body = self.text_rows()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines + [""] + self.footer()) + "\n"

    def to_text(self) -> str:
        header, body = self.text_rows()
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        right = set(range(3, len(header)))

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        return "\n".join([line(header), *(line(r) for r in body), *self.footer()]) + "\n"

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of neurons, parameters and connections per layer (log scale; zeros left out)."""
        from trainlab.plotting import new_figure

        if ax is None:
            fig, ax = new_figure(size=(max(6.0, 0.6 * len(self.layers()) + 2), 4.0))
        else:
            fig = ax.figure
        layers = self.layers()
        xs = range(len(layers))
        width = 0.27
        for offset, (label, values) in zip(
            (-width, 0, width),
            [
                ("neurons", [r.neurons for r in layers]),
                ("parameters", [r.params for r in layers]),
                ("connections", [r.connections for r in layers]),
            ],
            strict=True,
        ):
            heights = [v if v > 0 else float("nan") for v in values]  # log scale: no bar for zero
            ax.bar([x + offset for x in xs], heights, width, label=label)
        ax.set_yscale("log")
        ax.set_xticks(list(xs), [r.name for r in layers], rotation=60, fontsize=7)
        ax.set_ylabel("count")
        ax.legend(fontsize=8)
        return fig
