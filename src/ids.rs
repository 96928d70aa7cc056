//! Id generation: a fast generator seeded once per VM from the host's entropy (WASI
//! `random_get` through getrandom), so a request costs no host call for its ids.

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use crate::context::{SpanId, TraceId};

pub struct IdGenerator(SmallRng);

impl IdGenerator {
    /// Seeds from the host's entropy. Fails only when the host offers none.
    pub fn from_entropy() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        Ok(IdGenerator(SmallRng::from_seed(seed)))
    }

    /// A fixed seed, for tests and as a last resort when no entropy is available.
    pub fn from_seed(seed: u64) -> Self {
        IdGenerator(SmallRng::seed_from_u64(seed))
    }

    pub fn trace_id(&mut self) -> TraceId {
        loop {
            let mut id = [0u8; 16];
            self.0.fill_bytes(&mut id);
            let id = TraceId(id);
            if id.is_valid() {
                return id;
            }
        }
    }

    pub fn span_id(&mut self) -> SpanId {
        loop {
            let id = SpanId(self.0.next_u64().to_be_bytes());
            if id.is_valid() {
                return id;
            }
        }
    }
}
