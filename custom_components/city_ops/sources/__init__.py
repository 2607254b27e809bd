"""Wire formats: each module turns (topic, payload) into a typed Reading or raises DecodeError."""

from .reading import MAX_PAYLOAD_BYTES, DecodeError, Reading, SourceKind

__all__ = ["MAX_PAYLOAD_BYTES", "DecodeError", "Reading", "SourceKind"]
