//! The trace-context model shared by every codec: ids, sampling state and one span context.

/// A 128-bit trace id. All-zero is invalid in every format, so it is never constructed by
/// the codecs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct TraceId(pub [u8; 16]);

/// A 64-bit span id (never all zero once parsed or generated).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }

    /// The low 64 bits, as written by B3 or Jaeger when the trace id is 64-bit.
    pub fn low_half(&self) -> [u8; 8] {
        let [_, _, _, _, _, _, _, _, l0, l1, l2, l3, l4, l5, l6, l7] = self.0;
        [l0, l1, l2, l3, l4, l5, l6, l7]
    }

    /// True when the high 64 bits are zero: the id fits the 64-bit form.
    pub fn fits_64_bits(&self) -> bool {
        self.0.iter().take(8).all(|b| *b == 0)
    }

    /// A 64-bit id padded on the left with zeros, as every 128-bit format requires.
    pub fn from_low_half(low: [u8; 8]) -> Self {
        let mut id = [0u8; 16];
        for (dst, src) in id.iter_mut().skip(8).zip(low) {
            *dst = src;
        }
        TraceId(id)
    }

    /// The 56 rightmost bits, the randomness OpenTelemetry's consistent probability sampling
    /// (and W3C Level 2's random flag) is defined over.
    pub fn randomness_56(&self) -> u64 {
        u64::from_be_bytes(self.low_half()) & ((1u64 << 56) - 1)
    }
}

impl SpanId {
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }
}

/// A sampling decision as the formats carry it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sampling {
    /// No decision was made upstream (B3 without a sampling state).
    Deferred,
    NotSampled,
    Sampled,
    /// B3 `d` / `X-B3-Flags: 1` / Jaeger flag 0x02: debug, which implies sampled.
    Debug,
}

impl Sampling {
    pub fn is_sampled(self) -> bool {
        matches!(self, Sampling::Sampled | Sampling::Debug)
    }

    pub fn is_decided(self) -> bool {
        self != Sampling::Deferred
    }
}

/// One span context: the ids and flags every output format is rendered from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SpanContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// Only formats that carry it (B3, Jaeger) set it; never invented.
    pub parent_id: Option<SpanId>,
    pub sampling: Sampling,
    /// The trace id arrived in its 64-bit form; B3 and Jaeger keep that form on output.
    pub short_trace_id: bool,
    /// W3C Level 2 random-trace-id flag (0x02): the trace id's low 56 bits are random.
    pub random_trace_id: bool,
    /// Jaeger's firehose flag (0x08): the trace's spans skip indexing. Only Jaeger carries
    /// it; kept so that rewriting `uber-trace-id` does not lose it.
    pub firehose: bool,
}

impl SpanContext {
    pub fn new(trace_id: TraceId, span_id: SpanId, sampling: Sampling) -> Self {
        SpanContext {
            trace_id,
            span_id,
            parent_id: None,
            sampling,
            short_trace_id: false,
            random_trace_id: false,
            firehose: false,
        }
    }
}
