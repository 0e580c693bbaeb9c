"""Ingot: single-file ML model bundles.

This package holds the Python side of Ingot. :mod:`ingot.sklearn` exports a fitted
scikit-learn pipeline to the *unpacked directory* form of an ``.ingot`` bundle
(``manifest.json`` + ``tensors/*.npy``); ``ingot pack DIR -o model.ingot`` turns that
directory into the single file the Rust runtime loads. See ``docs/format.md``.
"""

__version__ = "0.1.0"

from . import sklearn  # noqa: E402  (needs __version__ defined first)

__all__ = ["__version__", "sklearn"]
