"""Shipped weights: generators (one folder each) and perception networks (`perception/`)."""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
