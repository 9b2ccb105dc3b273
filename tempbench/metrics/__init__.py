"""Pure-numpy metrics: grounding (IoU, R1@theta, mIoU, R@k), QVHighlights (official MR/HD), stats (bootstrap).

No I/O and no imports from the rest of the package; definitions in docs/metrics.md.
"""

from tempbench.metrics.grounding import (
    grounding_metrics,
    grounding_terms,
    iou_matrix,
    recall_at_k,
    temporal_iou,
)
from tempbench.metrics.qvhighlights import QVHighlightsResult
from tempbench.metrics.qvhighlights import evaluate as evaluate_qvhighlights
from tempbench.metrics.stats import PairedResult, bootstrap_ci, paired_test

__all__ = [
    "PairedResult",
    "QVHighlightsResult",
    "bootstrap_ci",
    "evaluate_qvhighlights",
    "grounding_metrics",
    "grounding_terms",
    "iou_matrix",
    "paired_test",
    "recall_at_k",
    "temporal_iou",
]
