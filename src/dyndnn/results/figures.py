"""The report's figures by name, with captions: read by the workflow (one rule per
figure) and the report. No plotting imports here, so the Snakefile stays light."""

__all__ = ["FIGURES"]

FIGURES = {
    "fig2_top1": "Paper Fig. 2: top-1 accuracy on the test images for each configuration, dynamic DNN and every baseline measured.",
    "fig3_confidence": "Paper Fig. 3: summed softmax confidence of the correct class, normalised to each technique's full model.",
    "fig4_latency": "Paper Fig. 4: single-image inference time per configuration on every mapping of every measured board (highest DVFS level, raw samples, log scale): the dynamic DNN in its shipped layout, the static dense models of the same widths, and the dynamic DNN with dense zero-block layers (naive reference).",
    "fig5_tradeoffs": "Paper Fig. 5: energy, power and time against top-1 for every configuration (marker) x mapping (colour) x DVFS level; line: Pareto front.",
    "dynamic_range": "Dynamic range (max / min over reachable operating points) of time and energy per technique, configurations alone and with mapping + DVFS.",
    "budget_trace": "Runtime managers on a changing time budget (dashed): latency per step of our lookup-table manager, a fixed configuration, Dynamic-OFA-style level stepping and an oracle.",
    "memory_compression": "Memory that must be resident to serve every configuration against the runtime-recoverable compression rate, per technique.",
}
