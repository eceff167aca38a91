"""Operations on latent spaces that know neither molecules nor fields: the codec contract first."""

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

__all__ = ["Codec", "CodecError", "Encoded", "codec_record", "latent_dim", "load_codec",
           "register_codec", "store_codec", "to_latent"]
