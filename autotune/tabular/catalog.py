"""The tables the tabular recipe knows by name, and its rule for telling classification from regression: plain
data, imported by the recipe's SCHEMA (so reading it imports neither pandas nor torch).

The bundled tables are listed here, not in the `dataset` registry: the registry's datasets return images
(`autotune.vision.data.Images`), and the image recipe accepts any registered name as its `data.dataset`.
"""
from __future__ import annotations

__all__ = ["DATASETS", "DATASET_NAMES", "MAX_CLASSES", "TASK_RULE"]

# scikit-learn's bundled tables (no download): name -> what it is
DATASETS = {
    "wine": "classification: 178 wines, 13 chemical measurements, 3 cultivars",
    "breast_cancer": "classification: 569 tumours, 30 measurements, malignant or benign",
    "diabetes": "regression: 442 patients, 10 measurements, disease progression after a year",
}
DATASET_NAMES = ("csv", *DATASETS)
MAX_CLASSES = 20
TASK_RULE = (f"classification when the target is not numeric (text, category, bool), or holds whole numbers only with "
             f"at most {MAX_CLASSES} distinct values; regression otherwise")
