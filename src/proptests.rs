//! Property tests over generated inputs.
