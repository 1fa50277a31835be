"""What ``inspect`` prints: every definition of a dead or dormant filter per layer, how far they
agree, and (``--json``) every column with the dead channels' indices."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .dormancy import APOZ_DIFFERS, Definition, agreement, applies_to, definitions, layer_counts, totals


def _applicable(report) -> list[Definition]:
    return [d for d in definitions() if d.column in report.filters]


def _cell(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{int(value)}"


def definition_lines(report) -> list[str]:
    """A compact per-layer table: filters, then how many filters each definition marks ("n/a"
    where it does not apply: no activation criterion, or no BatchNorm for gamma), mean APoZ; the
    totals; a legend naming each definition's rule and source; the agreement of the definitions."""
    chosen = _applicable(report)
    counts = layer_counts(report.filters, chosen)
    notes = report.filters.groupby("layer", sort=False)["note"].first() if "note" in report.filters else {}
    width = max(5, *(len(name) for name in counts["layer"]))
    headers = [d.name for d in chosen]
    cells = [max(6, len(h) + 1) for h in headers]
    lines = [f"{'layer':<{width}}{'filters':>8}" + "".join(f"{h:>{c + 1}}" for h, c in zip(headers, cells))
             + f"{'APoZ':>7}  note"]
    for _, row in counts.iterrows():
        note = notes.get(row["layer"], "") if len(notes) else ""
        apoz = "n/a" if math.isnan(row["mean_apoz"]) else f"{100 * row['mean_apoz']:.0f}%"
        lines.append((f"{row['layer']:<{width}}{row['filters']:>8}"
                      + "".join(f"{_cell(row[d.name]):>{c + 1}}" for d, c in zip(chosen, cells))
                      + f"{apoz:>7}  {note}").rstrip())
    total = totals(report.filters, chosen)
    lines.append(f"{'total':<{width}}{len(report.filters):>8}"
                 + "".join(f"{total[d.name]['count'] if total[d.name]['of'] else 'n/a':>{c + 1}}" for d, c in zip(chosen, cells)))
    lines.append("")
    for definition in chosen:
        share = total[definition.name]
        fraction = f"{100 * share['fraction']:.1f}% of {share['of']}" if share["of"] else "applies to no filter"
        lines.append(f"  {definition.name:>13}: {definition.rule} ({definition.source}); {fraction}"
                     + ("; removable exactly" if definition.exact else ""))
        if definition.differs:
            lines.append(f"  {'':>13}  differs from its source: {definition.differs}")
    lines.append(f"  {'APoZ':>13}: mean share of a layer's values that are zero (Hu et al. 2016); {APOZ_DIFFERS}")
    lines.append("")
    lines.extend(agreement_lines(report, chosen))
    return lines


def agreement_lines(report, chosen: list[Definition] | None = None) -> list[str]:
    """The definitions' pairwise Jaccard overlaps as a matrix ("-" where neither marks a filter)."""
    chosen = chosen or _applicable(report)
    pairs = agreement(report.filters, chosen)
    value = {(r.first, r.second): r.jaccard for r in pairs.itertuples()}
    headers = [d.name for d in chosen]
    cell = max(8, *(len(h) + 1 for h in headers))
    lines = ["agreement (Jaccard overlap of the sets, over the filters both definitions apply to)",
             f"{'':>{cell}}" + "".join(f"{h:>{cell}}" for h in headers)]
    for i, first in enumerate(chosen):
        row = []
        for j, second in enumerate(chosen):
            if i == j:
                row.append("1")
                continue
            overlap = value.get((first.name, second.name), value.get((second.name, first.name)))
            row.append("-" if overlap is None or np.isnan(overlap) else f"{overlap:.2f}")
        lines.append(f"{headers[i]:>{cell}}" + "".join(f"{c:>{cell}}" for c in row))
    return lines


def report_json(report) -> dict:
    """Every definition, per layer (counts of filters and the dead channels' indices, named as
    such), the totals (counts and fractions, named as such), the agreement, and the per-filter table."""
    chosen = _applicable(report)
    filters = report.filters
    layers = []
    for name, rows in filters.groupby("layer", sort=False):
        entry = {"layer": name, "filters": len(rows), "measured": bool(rows["measured"].all()),
                 "has_batchnorm": bool(rows["gamma"].notna().all()),
                 "mean_apoz": None if rows["apoz"].isna().all() else float(rows["apoz"].mean()),
                 "dead_count": {}, "dead_channels": {}}
        if "note" in rows and rows["note"].iloc[0]:
            entry["note"] = rows["note"].iloc[0]
        entry["agreement"] = agreement(rows, chosen).replace({np.nan: None}).to_dict(orient="records")
        for definition in chosen:
            if not applies_to(rows, definition).all():
                entry["dead_count"][definition.name] = entry["dead_channels"][definition.name] = None
                continue
            marked = rows.loc[rows[definition.column].astype(bool), "filter"].astype(int).tolist()
            entry["dead_count"][definition.name], entry["dead_channels"][definition.name] = len(marked), marked
        layers.append(entry)
    return {
        "definitions": [{"name": d.name, "column": d.column, "rule": d.rule, "source": d.source, "exact": d.exact,
                         "differs_from_source": d.differs or None} for d in chosen],
        "layers": layers,
        "totals": {name: {"dead_count": t["count"], "filters": t["of"], "dead_fraction": t["fraction"]}
                   for name, t in totals(filters, chosen).items()},
        "agreement": agreement(filters, chosen).replace({np.nan: None}).to_dict(orient="records"),
        "filters": pd.DataFrame(filters).replace({np.nan: None}).to_dict(orient="records"),
    }


def certificate_lines(certificate) -> list[str]:
    """Per layer: filters, dead on the images, and how many of those interval bounds certify."""
    layers = certificate.layers
    width = max(5, *(len(name) for name in layers["layer"]))
    low, high = certificate.box
    box = (f"[{low[0]:.3g}, {high[0]:.3g}]" if len(set(low)) == 1 and len(set(high)) == 1
           else "per channel " + ", ".join(f"[{lo:.3g}, {hi:.3g}]" for lo, hi in zip(low, high)))
    lines = [f"certified dead: cannot fire on any input with values in {box} (interval bounds)",
             f"{'layer':<{width}}{'filters':>8}{'dead':>7}{'certified':>11}"]
    for row in layers[layers["measured"]].itertuples():  # the others have no activation to bound
        lines.append(f"{row.layer:<{width}}{row.filters:>8}{int(row.dead_on_data):>7}{int(row.certified):>11}")
    measured = layers[layers["measured"]]
    dead, certified = int(measured["dead_on_data"].sum()), int(measured["certified"].sum())
    lines.append(f"{'total':<{width}}{int(measured['filters'].sum()):>8}{dead:>7}{certified:>11}")
    lines.append(f"{certified} of the {dead} filters dead on the images are certified"
                 + (f" ({100 * certified / dead:.0f}%)" if dead else "")
                 + "; pruning those is exact on any input in the box")
    if certificate.notes:
        lines.append("bounded by (-inf, inf), so nothing after them is certified: " + ", ".join(certificate.notes))
    return lines


def certificate_json(certificate) -> dict:
    return {"box": {"low": certificate.box[0], "high": certificate.box[1]},
            "layers": certificate.layers.replace({np.nan: None}).to_dict(orient="records"),
            "certified": certificate.certified, "unbounded_operations": certificate.notes,
            "certified_channels": {layer: rows.loc[rows["dead_by_activation"], "filter"].astype(int).tolist()
                                   for layer, rows in certificate.filters.groupby("layer", sort=False)}}
