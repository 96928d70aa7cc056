//! Support shared by the crate's unit tests: test-vector ids and builders, and the
//! generators of the property tests.

pub mod generate;
pub mod h2;
pub mod tls;
pub mod vectors;
