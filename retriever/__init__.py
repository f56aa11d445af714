"""retriever: dense retrievers from decoder-only language models."""

__version__ = "0.1.0"
