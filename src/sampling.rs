//! Sampling by ratio, as a pure function of the trace id, so every hop that re-decides for
//! one trace decides the same.
//!
//! Follows OpenTelemetry's consistent probability sampling: the 56 rightmost bits of the
//! trace id are its randomness, and a trace is kept when that randomness is at or above a
//! rejection threshold of `(1 - ratio) * 2^56`.

use crate::context::TraceId;

const RANDOMNESS_SPAN: f64 = (1u64 << 56) as f64;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioSampler {
    ratio: f64,
    threshold: u64,
}

impl RatioSampler {
    pub fn new(ratio: f64) -> Self {
        let ratio = ratio.clamp(0.0, 1.0);
        // Float-to-int casts saturate; the value is within [0, 2^56].
        let threshold = ((1.0 - ratio) * RANDOMNESS_SPAN).round() as u64;
        RatioSampler { ratio, threshold }
    }

    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The ratio to six decimals, for logs. Integer formatting only: f64's `Display`
    /// alone would add about 20 KB to the .wasm.
    pub fn ratio_text(&self) -> String {
        let millionths = (self.ratio * 1_000_000.0).round() as u64;
        format!("{}.{:06}", millionths / 1_000_000, millionths % 1_000_000)
    }

    pub fn sample(&self, trace_id: &TraceId) -> bool {
        trace_id.randomness_56() >= self.threshold
    }
}

#[cfg(test)]
mod tests;
