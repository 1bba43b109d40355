"""`dyndnn compare` for people: a header that names what differs between the two runs' configs
in what decides numbers (data, design, recipe, seeds, precision, export, measurement), and the
rows with each number in its unit (top-1 in percent and points, latencies in ms and percent, bytes
in MB) instead of pandas' shared float format (which printed a 48-point top-1 difference as
`-4.852300e+01`). `compare.compare` makes the rows; this module only shows them."""

from __future__ import annotations

import math

import pandas as pd

from dyndnn.results.runs import Run

__all__ = ["DECISIVE", "config_differences", "render"]

# The config blocks whose values decide a record's numbers (report, compare, runtime and
# simulate do not: they change how numbers are shown, judged or where jobs run).
DECISIVE = ("data", "model", "train", "baselines", "evaluate", "export", "profile", "seeds", "ablation")
IGNORED = {"data.path"}  # where the data lay on the machine that ran it; the data is named by content (data.sha256, dataset.json)


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _show(v, key: str = "") -> str:
    if v is None:
        return "all" if key.endswith("_subset") else "none"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, list):
        return "[" + ", ".join(map(_show, v)) + "]"
    return str(v)


def config_differences(ref: Run, run: Run) -> list[str]:
    """`key: reference vs run` for every decisive config value that differs, then the training
    precision each technique actually ran in where it differs. The primary `seed` joins `seeds`."""
    a, b = ({k: c.get(k) for k in DECISIVE} for c in (ref.config or {}, run.config or {}))
    for side, cfg in ((a, ref.config or {}), (b, run.config or {})):
        side["seeds"] = cfg.get("seeds") or [cfg.get("seed", 0)]
    fa, fb = _flat(a), _flat(b)
    out = [
        f"{k}: {_show(fa.get(k), k)} vs {_show(fb.get(k), k)}"
        for k in sorted(set(fa) | set(fb))
        if k not in IGNORED and fa.get(k) != fb.get(k)
    ]
    models = sorted(set(ref.tables["accuracy"].get("model", [])) & set(run.tables["accuracy"].get("model", [])))
    for m in models:
        pa, pb = ref.precision(m), run.precision(m)
        if pa and pb and pa != pb:
            out.append(f"training precision of {m}: {pa} vs {pb}")
    return out


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _value(kind: str, v) -> str:
    """A reference or run cell in its unit (strings such as verdicts or 'x (mean of 3 seeds)' pass
    with their number converted)."""
    if isinstance(v, str):
        head, sep, tail = v.partition(" ")
        f = _num(head) if kind in ("top1", "latency_ms", "resident_bytes") else None
        return _value(kind, f) + sep + tail if f is not None else v
    f = _num(v)
    if f is None:
        return "-"
    if kind == "top1":
        return f"{100 * f:.2f} %"
    if kind == "latency_ms":
        return f"{f:.3f} ms"
    if kind == "resident_bytes":
        return f"{f / 1e6:.2f} MB"
    return f"{f:.4g}"


def _difference(kind: str, v) -> str:
    f = _num(v)
    if f is None:
        return "-"
    if kind == "top1":
        return f"{f:+.2f} pts"
    if kind in ("latency_ms", "latency_ratio"):
        return f"{100 * f:+.1f} %"
    if kind == "resident_bytes":
        return f"{f / 1e6:+.2f} MB"
    return f"{f:+.4g}"


def render(rows: pd.DataFrame, width: int = 110) -> str:
    """The rows as a fixed-width text table, every number in its unit; reasons cut at `width`."""
    if rows.empty:
        return ""
    shown = pd.DataFrame(
        {
            "kind": rows["kind"],
            "key": rows["key"],
            "reference": [_value(k, v) for k, v in zip(rows["kind"], rows["reference"])],
            "run": [_value(k, v) for k, v in zip(rows["kind"], rows["run"])],
            "difference": [_difference(k, v) for k, v in zip(rows["kind"], rows["difference"])],
            "tolerance": rows["tolerance"].map(lambda t: "-" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)),
            "status": rows["status"],
            "reason": rows["reason"].map(lambda r: "" if not isinstance(r, str) else r if len(r) <= width else r[: width - 3] + "..."),
        }
    )
    cells = [list(shown.columns)] + shown.astype(str).values.tolist()
    widths = [max(len(r[i]) for r in cells) for i in range(len(shown.columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
