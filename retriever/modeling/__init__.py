"""The models: the retriever (encoder.py), the re-ranker (reranker.py), poolings, losses.

`from retriever.modeling import EncoderModel` works; the import is done on first use, so
that `retriever.modeling.pooling` (which the spec names) loads without torch.
"""
__all__ = ["EncoderModel", "EncoderOutput"]


def __getattr__(name):
    if name in __all__:
        from retriever.modeling import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module 'retriever.modeling' has no attribute '{name}'")
