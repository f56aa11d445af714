from retriever.modeling.encoder import POOLING_MODES, EncoderModel, EncoderOutput, pool
from retriever.modeling.loss import contrastive_loss, positive_labels, similarity

__all__ = [
    "POOLING_MODES",
    "EncoderModel",
    "EncoderOutput",
    "pool",
    "contrastive_loss",
    "positive_labels",
    "similarity",
]
