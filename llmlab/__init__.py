"""llmlab: build modern large language models from scratch in PyTorch.

The package holds the course harness (topic registry, loading, grading, sync, reference
data, release) and the given, tested course library (corpus, building blocks) that topics
build on.
"""

__version__ = "0.1.0"
