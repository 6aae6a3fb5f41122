"""Tables for the tabular recipe (`recipes/tabular.py`): classification and regression on CSV or Parquet files.

- `autotune.tabular.data`: read a table, split it, fit the preprocessing on the train split, encode it as tensors;
- `autotune.tabular.model`: the network (an MLP over numeric inputs and categorical embeddings) and its export;
- `autotune.tabular.rows`: rows (dicts, or a .csv/.parquet file) -> an exported model's predictions, with no recipe
  and no training code;
- `autotune.tabular.serving`: the HTTP app of an exported model (`autotune serve`): JSON rows -> predictions.
"""
