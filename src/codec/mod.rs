//! Header codecs: each format parses to and renders from [`crate::context::SpanContext`].
//! Pure functions over bytes; nothing here knows about Envoy.

pub mod b3;
pub mod jaeger;
pub mod tracecontext;
pub mod value;

pub use value::HeaderValue;

/// The propagation formats, named as OpenTelemetry names its propagators.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Format {
    TraceContext,
    B3,
    B3Multi,
    Jaeger,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::TraceContext,
        Format::B3,
        Format::B3Multi,
        Format::Jaeger,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::TraceContext => "tracecontext",
            Format::B3 => "b3",
            Format::B3Multi => "b3multi",
            Format::Jaeger => "jaeger",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Every request header the filter reads or writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Header {
    Traceparent,
    Tracestate,
    B3,
    XB3TraceId,
    XB3SpanId,
    XB3ParentSpanId,
    XB3Sampled,
    XB3Flags,
    UberTraceId,
}

impl Header {
    pub const COUNT: usize = 9;
    pub const ALL: [Header; Header::COUNT] = [
        Header::Traceparent,
        Header::Tracestate,
        Header::B3,
        Header::XB3TraceId,
        Header::XB3SpanId,
        Header::XB3ParentSpanId,
        Header::XB3Sampled,
        Header::XB3Flags,
        Header::UberTraceId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Header::Traceparent => "traceparent",
            Header::Tracestate => "tracestate",
            Header::B3 => "b3",
            Header::XB3TraceId => "x-b3-traceid",
            Header::XB3SpanId => "x-b3-spanid",
            Header::XB3ParentSpanId => "x-b3-parentspanid",
            Header::XB3Sampled => "x-b3-sampled",
            Header::XB3Flags => "x-b3-flags",
            Header::UberTraceId => "uber-trace-id",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Matches a header name case-insensitively (HTTP/1 names may arrive in any case).
    /// The length check first keeps the common miss to one comparison.
    pub fn from_name(name: &[u8]) -> Option<Header> {
        let candidates: &[Header] = match name.len() {
            2 => &[Header::B3],
            10 => &[Header::Tracestate, Header::XB3Flags],
            11 => &[Header::Traceparent, Header::XB3SpanId],
            12 => &[Header::XB3TraceId, Header::XB3Sampled],
            13 => &[Header::UberTraceId],
            17 => &[Header::XB3ParentSpanId],
            _ => return None,
        };
        candidates
            .iter()
            .copied()
            .find(|h| h.name().as_bytes().eq_ignore_ascii_case(name))
    }

    pub fn format(self) -> Format {
        match self {
            Header::Traceparent | Header::Tracestate => Format::TraceContext,
            Header::B3 => Format::B3,
            Header::XB3TraceId
            | Header::XB3SpanId
            | Header::XB3ParentSpanId
            | Header::XB3Sampled
            | Header::XB3Flags => Format::B3Multi,
            Header::UberTraceId => Format::Jaeger,
        }
    }
}

/// How many tracestate headers are joined before the rest is treated as invalid.
const MAX_TRACESTATE_PARTS: usize = 8;

/// One header as seen in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Slot<'a> {
    #[default]
    Absent,
    One(&'a [u8]),
    /// Sent more than once. Only tracestate may legally repeat; elsewhere it is invalid.
    Repeated,
}

/// The trace headers of one request, borrowed from the host's header block.
#[derive(Debug, Default)]
pub struct Carrier<'a> {
    slots: [Slot<'a>; Header::COUNT],
    tracestate_parts: [&'a [u8]; MAX_TRACESTATE_PARTS],
    tracestate_count: usize,
    /// `:authority` (Envoy gives HTTP/1 requests one too), for matching external hosts.
    pub authority: Option<&'a [u8]>,
    /// A W3C `baggage` header is present (removed with the trace headers when a call to a
    /// third party must not carry them).
    pub baggage: bool,
}

impl<'a> Carrier<'a> {
    pub fn from_pairs<I: IntoIterator<Item = (&'a [u8], &'a [u8])>>(pairs: I) -> Self {
        let mut carrier = Carrier::default();
        for (name, value) in pairs {
            carrier.observe(name, value);
        }
        carrier
    }

    pub fn observe(&mut self, name: &'a [u8], value: &'a [u8]) {
        let Some(header) = Header::from_name(name) else {
            match name.len() {
                10 if name == b":authority" => self.authority = Some(value),
                7 if name.eq_ignore_ascii_case(b"baggage") => self.baggage = true,
                _ => {}
            }
            return;
        };
        if header == Header::Tracestate {
            if let Some(part) = self.tracestate_parts.get_mut(self.tracestate_count) {
                *part = value;
            }
            self.tracestate_count = self.tracestate_count.saturating_add(1);
        }
        if let Some(slot) = self.slots.get_mut(header.index()) {
            *slot = match slot {
                Slot::Absent => Slot::One(value),
                Slot::One(_) | Slot::Repeated => Slot::Repeated,
            };
        }
    }

    pub fn get(&self, header: Header) -> Slot<'a> {
        self.slots.get(header.index()).copied().unwrap_or_default()
    }

    pub fn is_present(&self, header: Header) -> bool {
        self.get(header) != Slot::Absent
    }

    /// Every tracestate value in order, or `None` when too many headers were sent to join.
    pub fn tracestate_parts(&self) -> Option<&[&'a [u8]]> {
        self.tracestate_parts.get(..self.tracestate_count)
    }
}

/// The iterator over a host's serialized header map (the proxy-wasm ABI layout: a u32
/// count, then (key length, value length) u32 pairs, then each key and value followed by a
/// NUL). Malformed input ends the iteration instead of panicking.
pub fn serialized_pairs(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let read_u32 = |at: usize| -> Option<usize> {
        let b = block.get(at..at + 4)?;
        let arr: [u8; 4] = b.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(arr)).ok()
    };
    let count = read_u32(0).unwrap_or(0);
    let mut data = 4usize.saturating_add(count.saturating_mul(8));
    let mut n = 0usize;
    std::iter::from_fn(move || {
        if n >= count {
            return None;
        }
        let sizes = 4 + n * 8;
        let key_len = read_u32(sizes)?;
        let value_len = read_u32(sizes + 4)?;
        let key = block.get(data..data.checked_add(key_len)?)?;
        data = data.checked_add(key_len)?.checked_add(1)?;
        let value = block.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        n += 1;
        Some((key, value))
    })
}

/// Builds the serialized layout [`serialized_pairs`] reads: what a host hands to the filter.
pub fn serialize_pairs<'a, I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Vec<u8> {
    let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in &pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in &pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests;
