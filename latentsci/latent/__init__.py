"""Operations on latent spaces that know neither molecules nor fields: the codec contract, the
domain pieces codecs bring (item similarity, properties) and a differentiable property predictor
first."""

from latentsci.latent.codec import (
    Codec,
    CodecError,
    Encoded,
    codec_record,
    latent_dim,
    load_codec,
    register_codec,
    store_codec,
    to_latent,
)
from latentsci.latent.domain import DomainPieces, domain_pieces, register_domain
from latentsci.latent.predictor import (
    PredictorConfig,
    PropertyPredictor,
    fit_predictor,
    load_predictor,
    save_predictor,
)

__all__ = ["Codec", "CodecError", "Encoded", "codec_record", "latent_dim", "load_codec",
           "register_codec", "store_codec", "to_latent", "PredictorConfig", "PropertyPredictor",
           "fit_predictor", "load_predictor", "save_predictor", "DomainPieces", "domain_pieces",
           "register_domain"]
