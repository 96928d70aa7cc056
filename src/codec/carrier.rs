//! The trace headers of one request, borrowed from wherever the request's headers live
//! (the host's header map, or a request head in the byte stream).

use super::Header;
use super::table::PerHeader;

/// How many tracestate headers are joined before the rest is treated as invalid.
const MAX_TRACESTATE_PARTS: usize = 8;

/// One header as seen in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Slot<'a> {
    #[default]
    Absent,
    One(&'a [u8]),
    /// Sent more than once; the first value is kept. tracestate is joined (RFC 9110), B3 and
    /// Jaeger read the first value, a repeated traceparent is invalid.
    Repeated(&'a [u8]),
}

/// The trace headers of one request.
#[derive(Debug, Default)]
pub struct Carrier<'a> {
    slots: PerHeader<Slot<'a>>,
    tracestate_parts: [&'a [u8]; MAX_TRACESTATE_PARTS],
    tracestate_count: usize,
    /// `:authority` (Envoy gives HTTP/1 requests one too), for matching external hosts.
    pub authority: Option<&'a [u8]>,
    /// `x-request-id`: downstream, Envoy's UUID request-id extension records its tracing
    /// decision in it before the HTTP filters run (the policy reads it back).
    pub request_id: Option<&'a [u8]>,
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
                12 if name.eq_ignore_ascii_case(b"x-request-id") => self.request_id = Some(value),
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
        let slot = &mut self.slots[header];
        *slot = match *slot {
            Slot::Absent => Slot::One(value),
            Slot::One(first) | Slot::Repeated(first) => Slot::Repeated(first),
        };
    }

    pub fn get(&self, header: Header) -> Slot<'a> {
        self.slots[header]
    }

    /// The header's value when it was sent exactly once; `Err` when it was repeated.
    pub fn single(&self, header: Header) -> Result<Option<&'a [u8]>, Repeated> {
        match self.get(header) {
            Slot::Absent => Ok(None),
            Slot::One(v) => Ok(Some(v)),
            Slot::Repeated(_) => Err(Repeated),
        }
    }

    /// The header's first value, however often it was sent.
    pub fn first(&self, header: Header) -> Option<&'a [u8]> {
        match self.get(header) {
            Slot::Absent => None,
            Slot::One(v) | Slot::Repeated(v) => Some(v),
        }
    }

    pub fn is_present(&self, header: Header) -> bool {
        self.get(header) != Slot::Absent
    }

    /// Every tracestate value in order, or `None` when too many headers were sent to join.
    pub fn tracestate_parts(&self) -> Option<&[&'a [u8]]> {
        self.tracestate_parts.get(..self.tracestate_count)
    }
}

/// A header that may be sent once was sent more than once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeated;
