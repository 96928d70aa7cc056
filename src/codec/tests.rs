//! Codec unit tests (published vectors, both directions).
