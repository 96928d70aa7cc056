//! Sampling by ratio, as a pure function of the trace's randomness, so every hop that
//! re-decides for one trace decides the same.
//!
//! Follows OpenTelemetry's consistent probability sampling (opentelemetry-specification,
//! trace/tracestate-probability-sampling.md and tracestate-handling.md): the randomness is
//! the explicit `ot=rv:` value when the tracestate carries one, else the 56 rightmost bits of
//! the trace id; a trace is kept when that randomness is at or above the rejection threshold
//! `(1 - ratio) * 2^56`, rounded as the SDKs round it (4 significant hex digits), so that the
//! `ot=th:` written next to the decision is exactly the threshold it was made with.

use crate::context::TraceId;

/// Most threshold digits (56 bits).
const TH_DIGITS: usize = 14;
/// The precision the specification recommends SDKs use by default (hex digits).
const TH_PRECISION: i32 = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioSampler {
    ratio: f64,
    /// The rejection threshold; `2^56` (nothing kept) for ratio 0.
    threshold: u64,
    /// `th` without trailing zeros (`0` for ratio 1); empty for ratio 0, which is no
    /// probability sampling (the spec: "never" has no threshold).
    th: [u8; TH_DIGITS],
    th_len: usize,
}

impl RatioSampler {
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        let mut s = RatioSampler {
            ratio,
            threshold: 1 << 56,
            th: [0; TH_DIGITS],
            th_len: 0,
        };
        if ratio >= 1.0 {
            s.threshold = 0;
            s.th[0] = b'0';
            s.th_len = 1;
        } else if ratio > 0.0 {
            s.set_rounded(ratio);
        }
        s
    }

    /// The specification's `probability_to_threshold_with_precision` with precision 4:
    /// `2 - p` as an IEEE double holds the rejection probability in its 13 mantissa hex
    /// digits; the precision grows by one digit per four leading `f`s, it is rounded half up
    /// at its last digit, and trailing zeros are dropped.
    fn set_rounded(&mut self, p: f64) {
        // frexp's exponent of p (p = m * 2^e, m in [0.5, 1)), from the biased exponent.
        let biased = ((p.to_bits() >> 52) & 0x7ff) as i32;
        let exp = biased - 1023 + 1;
        let precision = (TH_PRECISION + (-exp).max(0) / 4).clamp(1, 12);
        let half_digit = 0.5 * f64::powi(2.0, -4 * precision);
        let rejection = 2.0 - p + half_digit;
        let mantissa = if rejection >= 2.0 {
            (1u64 << 52) - 1
        } else {
            rejection.to_bits() & ((1u64 << 52) - 1)
        };
        // 13 digits from the mantissa, the 14th is zero; keep `precision` of them.
        let shift = 4 * (13 - precision as u32);
        let kept = mantissa >> shift << shift;
        self.threshold = kept << 4;
        let mut len = precision as usize;
        for (i, slot) in self.th.iter_mut().enumerate().take(len) {
            let nibble = (self.threshold >> (4 * (13 - i))) & 0xf;
            *slot = HEX.get(nibble as usize).copied().unwrap_or(b'0');
        }
        while len > 1 && self.th.get(len - 1) == Some(&b'0') {
            len -= 1;
        }
        self.th_len = len;
    }

    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The rejection threshold the decisions are made with (56 bits; `2^56` for ratio 0).
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// The `th` value for a trace this sampler kept; `None` for ratio 0.
    pub fn th(&self) -> Option<&str> {
        let digits = self.th.get(..self.th_len).filter(|d| !d.is_empty())?;
        std::str::from_utf8(digits).ok()
    }

    /// The ratio to six decimals, for logs. Integer formatting only: f64's `Display`
    /// alone would add about 20 KB to the .wasm.
    pub fn ratio_text(&self) -> String {
        let millionths = (self.ratio * 1_000_000.0).round() as u64;
        format!("{}.{:06}", millionths / 1_000_000, millionths % 1_000_000)
    }

    pub fn sample(&self, trace_id: &TraceId) -> bool {
        self.sample_randomness(trace_id.randomness_56())
    }

    /// The decision for an explicit 56-bit randomness (`ot=rv:`).
    pub fn sample_randomness(&self, randomness: u64) -> bool {
        randomness >= self.threshold
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The key of OpenTelemetry's tracestate member.
pub const OT_KEY: &[u8] = b"ot";

/// The OpenTelemetry sub-keys tracejoin reads from an `ot=` tracestate value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtState {
    /// A valid `th` (1 to 14 lowercase hex digits), as the 56-bit threshold.
    pub th: Option<u64>,
    /// A valid `rv` (exactly 14 lowercase hex digits).
    pub rv: Option<u64>,
}

/// The `ot` member's value in a tracestate made of `parts` (every tracestate header): a
/// plain scan, kept as the independent oracle that `tracestate::parse_with_value` (what the
/// request path uses) is checked against.
#[cfg(test)]
pub fn ot_value<'a>(parts: &[&'a [u8]]) -> Option<&'a [u8]> {
    parts.iter().find_map(|part| {
        part.split(|b| *b == b',').find_map(|m| {
            let m = m.trim_ascii();
            let value = m.strip_prefix(OT_KEY)?.strip_prefix(b"=")?;
            Some(value)
        })
    })
}

/// `th` and `rv` from an `ot` value (`key:value` sub-members separated by `;`); an
/// invalid one counts as absent.
pub fn parse_ot(value: &[u8]) -> OtState {
    let mut state = OtState::default();
    for sub in value.split(|b| *b == b';') {
        if let Some(th) = sub.strip_prefix(b"th:") {
            state.th = parse_hex56(th, false);
        } else if let Some(rv) = sub.strip_prefix(b"rv:") {
            state.rv = parse_hex56(rv, true);
        }
    }
    state
}

/// 1 to 14 lowercase hex digits extended with trailing zeros to 14 (`exact`: all 14).
fn parse_hex56(digits: &[u8], exact: bool) -> Option<u64> {
    if digits.is_empty() || digits.len() > TH_DIGITS || (exact && digits.len() != TH_DIGITS) {
        return None;
    }
    let mut v = 0u64;
    for d in digits {
        let nibble = HEX.iter().position(|h| h == d)? as u64;
        v = v << 4 | nibble;
    }
    Some(v << (4 * (TH_DIGITS - digits.len())))
}

/// The `ot` value with `th` set to `th` (or erased when `None`), the other sub-members kept
/// in order; `None` when nothing is left.
pub fn with_th(value: Option<&[u8]>, th: Option<&str>) -> Option<String> {
    let mut out = String::new();
    if let Some(th) = th {
        out.push_str("th:");
        out.push_str(th);
    }
    for sub in value.unwrap_or_default().split(|b| *b == b';') {
        if sub.is_empty() || sub.starts_with(b"th:") {
            continue;
        }
        // The value was validated as printable ASCII by the tracestate parser.
        let Ok(sub) = std::str::from_utf8(sub) else {
            continue;
        };
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(sub);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests;
