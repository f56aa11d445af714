from retriever.modeling.encoder import POOLING_MODES, EncoderModel, EncoderOutput, pool

__all__ = [
    "POOLING_MODES",
    "EncoderModel",
    "EncoderOutput",
    "pool",
]
