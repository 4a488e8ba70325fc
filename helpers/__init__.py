"""Shared helpers for the 'Deep learning for NLP with Python' notebooks: data, plots, runtime, results."""

from . import runtime  # noqa: F401 - first: it sizes the thread pools before NumPy, torch or TensorFlow load (limit_threads)
from .data import DatasetError, Imdb, Split, data_dir, load_imdb, work_dir
from .results import load_results, record_result
from .runtime import environment_report, preset, seed_everything

__all__ = ["DatasetError", "Imdb", "Split", "data_dir", "work_dir", "load_imdb", "load_results",
           "record_result", "environment_report", "preset", "seed_everything"]
