//! The trace headers of one request, borrowed from wherever the request's headers live
//! (the host's header map, or a request head in the byte stream).

use super::Header;
use super::table::PerHeader;

/// tracestate headers held inline; more spill into a vector (the rare case pays for it).
const INLINE_TRACESTATE_PARTS: usize = 8;
/// The longest combined tracestate (every value plus the joining commas) that is read: the
/// longest list of 32 unpadded members (a 256-character key, `=` and a 256-character value)
/// and 31 commas. Padding and empty members are legal, so a valid but padded list can be
/// longer: it is dropped, as W3C allows (a vendor need propagate only 512 characters).
/// RFC 9110 joins any number of headers; what bounds the work is the size.
pub const MAX_TRACESTATE_COMBINED: usize = 32 * (256 + 1 + 256) + 31;

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
    tracestate_parts: [&'a [u8]; INLINE_TRACESTATE_PARTS],
    /// Every part, once more than fit inline (empty, never allocated, until then).
    tracestate_spill: Vec<&'a [u8]>,
    tracestate_count: usize,
    /// The combined length so far: values and the commas that join them.
    tracestate_len: usize,
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

    /// Takes one header in; which trace header it is, if one.
    pub fn observe(&mut self, name: &'a [u8], value: &'a [u8]) -> Option<Header> {
        let Some(header) = Header::from_name(name) else {
            match name.len() {
                10 if name == b":authority" => self.authority = Some(value),
                7 if name.eq_ignore_ascii_case(b"baggage") => self.baggage = true,
                12 if name.eq_ignore_ascii_case(b"x-request-id") => self.request_id = Some(value),
                _ => {}
            }
            return None;
        };
        if header == Header::Tracestate {
            self.observe_tracestate(value);
        }
        let slot = &mut self.slots[header];
        *slot = match *slot {
            Slot::Absent => Slot::One(value),
            Slot::One(first) | Slot::Repeated(first) => Slot::Repeated(first),
        };
        Some(header)
    }

    fn observe_tracestate(&mut self, value: &'a [u8]) {
        let comma = usize::from(self.tracestate_count > 0);
        self.tracestate_len = self
            .tracestate_len
            .saturating_add(value.len())
            .saturating_add(comma);
        if self.tracestate_len <= MAX_TRACESTATE_COMBINED {
            if let Some(part) = self.tracestate_parts.get_mut(self.tracestate_count) {
                *part = value;
            } else {
                if self.tracestate_spill.is_empty() {
                    self.tracestate_spill
                        .extend_from_slice(&self.tracestate_parts);
                }
                self.tracestate_spill.push(value);
            }
        }
        self.tracestate_count = self.tracestate_count.saturating_add(1);
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

    /// Every tracestate value in order (RFC 9110: to be joined with commas), or `None` when
    /// the combined value is longer than any valid tracestate.
    pub fn tracestate_parts(&self) -> Option<&[&'a [u8]]> {
        if self.tracestate_len > MAX_TRACESTATE_COMBINED {
            return None;
        }
        if self.tracestate_count > INLINE_TRACESTATE_PARTS {
            return Some(&self.tracestate_spill);
        }
        self.tracestate_parts.get(..self.tracestate_count)
    }
}

/// A header that may be sent once was sent more than once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeated;
