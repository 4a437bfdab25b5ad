"""Notebook output: HTML reprs, plots and DataFrame conversions of finetune_kit's objects.

The result types hook in here with one-line methods (``_repr_html_``, ``plot``,
``to_pandas``), so that this package holds all the presentation logic. Nothing here imports
the optional libraries (matplotlib, pandas, Hugging Face ``datasets``) at import time: each is
imported inside the call that needs it, so ``import finetune_kit`` stays as light as before.
"""

from __future__ import annotations
