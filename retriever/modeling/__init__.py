"""The models: the retriever (encoder.py), the re-ranker (reranker.py), their losses, loading and export.

`from retriever.modeling import EncoderModel` works; the import is done on first use.
"""
__all__ = ["EncoderModel", "EncoderOutput"]


def __getattr__(name):
    if name in __all__:
        from retriever.modeling import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module 'retriever.modeling' has no attribute '{name}'")
