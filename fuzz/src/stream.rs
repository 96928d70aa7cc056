//! The `stream` target's oracle: what the simulated HCM received (`output`, plus `held`,
//! what the filter still buffers at the end) against the input stream, message by message
//! as [`crate::http1`] frames the input.

use tracejoin::codec::Header;

use crate::http1::{self, Framed, HeadRead, Stop};
use crate::{header_value_ok, show, tracestate_ok, visible_ascii};

/// What the check saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Heads whose bytes the filter changed, among those the framer followed.
    pub rewritten: usize,
}

/// The limits the check needs from the filter's config.
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_held_bytes: usize,
}

fn header_of(name: &[u8]) -> Option<Header> {
    Some(match name.to_ascii_lowercase().as_slice() {
        b"traceparent" => Header::Traceparent,
        b"tracestate" => Header::Tracestate,
        b"b3" => Header::B3,
        b"x-b3-traceid" => Header::XB3TraceId,
        b"x-b3-spanid" => Header::XB3SpanId,
        b"x-b3-parentspanid" => Header::XB3ParentSpanId,
        b"x-b3-sampled" => Header::XB3Sampled,
        b"x-b3-flags" => Header::XB3Flags,
        b"uber-trace-id" => Header::UberTraceId,
        b"x-datadog-trace-id" => Header::XDatadogTraceId,
        b"x-datadog-parent-id" => Header::XDatadogParentId,
        b"x-datadog-sampling-priority" => Header::XDatadogSamplingPriority,
        b"x-datadog-origin" => Header::XDatadogOrigin,
        b"x-datadog-tags" => Header::XDatadogTags,
        b"x-amzn-trace-id" => Header::XAmznTraceId,
        b"ot-tracer-traceid" => Header::OtTracerTraceId,
        b"ot-tracer-spanid" => Header::OtTracerSpanId,
        b"ot-tracer-sampled" => Header::OtTracerSampled,
        _ => return None,
    })
}

/// The HCM's codec for [`tracejoin::network::envoy_loop`], framed by [`crate::http1`]
/// (written apart from the filter): it takes up to the end of the next request, or all.
#[derive(Clone, Default)]
pub struct IndependentCodec {
    taken: Vec<u8>,
    raw: bool,
}

impl tracejoin::network::envoy_loop::Codec for IndependentCodec {
    fn take(&mut self, bytes: &[u8]) -> (usize, Option<bool>) {
        if self.raw {
            return (bytes.len(), None);
        }
        let before = self.taken.len();
        self.taken.extend_from_slice(bytes);
        let framed = http1::frame(&self.taken);
        for m in &framed.messages {
            let end = m.body.end;
            if m.complete && end > before && !m.head.tunnel {
                self.taken.truncate(end);
                let head = &self.taken[m.head.method.clone()] == b"HEAD";
                return (end - before, Some(head));
            }
        }
        if matches!(framed.stop, Stop::Leave { .. }) {
            // Refused or a tunnel: Envoy reads no request after it; its bytes are taken.
            self.raw = true;
        }
        (bytes.len(), None)
    }
}

/// Checks the output; `Err` says what is wrong. `closed`: the filter closed the connection,
/// so the output may stop anywhere (never add or change anything).
pub fn check(
    input: &[u8],
    output: &[u8],
    held: &[u8],
    end_of_stream: bool,
    closed: bool,
    limits: &Limits,
) -> Result<(Framed, Seen), String> {
    let framed = http1::frame(input);
    let mut seen = Seen::default();
    let mut o = 0usize;
    for (i, m) in framed.messages.iter().enumerate() {
        if closed && o >= output.len() {
            return Ok((framed, seen));
        }
        // (1) the empty lines before the head, unchanged.
        let lead = &input[m.start..m.head.start];
        if closed && lead.starts_with(&output[o..]) {
            return Ok((framed, seen));
        }
        if !output[o..].starts_with(lead) {
            return Err(format!("message {i}: the empty lines before it changed"));
        }
        o += lead.len();
        // (4) the head as the HCM gets it parses, by the same framer.
        let out = match http1::read_head(output, o) {
            HeadRead::Head(h) => h,
            HeadRead::Incomplete if closed => {
                // Closed inside a head: what went out is the start of one (possibly
                // rewritten, so only its request line is compared).
                let line = &input[m.head.request_line.clone()];
                let sent = &output[o..];
                if !(line.starts_with(sent) || sent.starts_with(line)) {
                    return Err(format!("message {i}: closed inside a changed head"));
                }
                return Ok((framed, seen));
            }
            HeadRead::Incomplete => return Err(format!("message {i}: output head incomplete")),
            HeadRead::Bad(why, what) => {
                return Err(format!("message {i}: output head bad ({why:?}: {what})"));
            }
        };
        let (before, after) = (
            &input[m.head.start..m.head.end],
            &output[out.start..out.end],
        );
        if output[out.request_line.clone()] != input[m.head.request_line.clone()] {
            return Err(format!("message {i}: request line changed"));
        }
        // (1) every line but trace-header lines, in order, byte for byte.
        let others = |s: &[u8], h: &http1::Head| -> Vec<Vec<u8>> {
            h.fields
                .iter()
                .filter(|f| !f.trace)
                .map(|f| s[f.line.clone()].to_vec())
                .collect()
        };
        if others(input, &m.head) != others(output, &out) {
            return Err(format!(
                "message {i}: lines other than trace headers changed:\n{}\n->\n{}",
                show(before),
                show(after)
            ));
        }
        // (2) the same framing (implied by the lines above; cheap to say).
        if out.framing != m.head.framing || out.tunnel != m.head.tunnel {
            return Err(format!("message {i}: framing changed"));
        }
        if before != after {
            seen.rewritten += 1;
            check_trace_lines(input, &m.head, output, &out)
                .map_err(|e| format!("message {i}: {e}:\n{}", show(after)))?;
        }
        o = out.end;
        // (2) the body, byte for byte, header-looking lines included.
        let body = &input[m.body.clone()];
        if closed && body.starts_with(&output[o..]) {
            return Ok((framed, seen));
        }
        if !output[o..].starts_with(body) {
            return Err(format!("message {i}: body changed"));
        }
        o += body.len();
    }
    let tail = &output[o..];
    let at = framed.stop.at(input.len());
    let rest = &input[at..];
    if closed {
        let ok = match framed.stop {
            // Past what this framer follows only lines are compared: those that went out
            // (the last perhaps cut short) are the input's, trace-header lines apart.
            Stop::Unchecked { .. } => {
                let (mut sent, all) = (http1::non_trace_lines(tail), http1::non_trace_lines(rest));
                // A line cut off by the close cannot be told from a trace-header line.
                if sent.last().is_some_and(|l| !l.ends_with(b"\r\n")) {
                    sent.pop();
                }
                sent.len() <= all.len() && sent.iter().zip(&all).all(|(a, b)| a == b)
            }
            _ => rest.starts_with(tail),
        };
        return if ok {
            Ok((framed, seen))
        } else {
            Err("closed: what went out after the last message is not the input's".into())
        };
    }
    if end_of_stream && !held.is_empty() {
        return Err(format!("{} bytes held after the end of stream", held.len()));
    }
    if held.len() >= limits.max_held_bytes {
        return Err(format!("{} bytes held: past the buffer limit", held.len()));
    }
    match framed.stop {
        Stop::End => {
            if !tail.is_empty() {
                return Err(format!("{} bytes after the last message", tail.len()));
            }
            if !held.is_empty() {
                return Err(format!(
                    "(3) {} bytes held though every message is complete",
                    held.len()
                ));
            }
        }
        Stop::Incomplete { .. } => {
            // (3) only the unfinished head may be held, and within Envoy's head limit
            // (empty lines before it apart).
            if [tail, held].concat() != rest {
                return Err("the unfinished head changed".into());
            }
            if held.len() > limits.max_head_bytes + 2 * http1::MAX_EMPTY_LINES + 4 {
                return Err(format!("{} bytes held: past the head limit", held.len()));
            }
        }
        Stop::Leave { why, what, .. } => {
            // (5) from the first ambiguous or non-HTTP/1 byte on, nothing changes.
            if !held.is_empty() {
                return Err(format!(
                    "(3) {} bytes held after {why:?} ({what}): {}",
                    held.len(),
                    show(held)
                ));
            }
            if tail != rest {
                return Err(format!(
                    "(5) changed after {why:?} ({what}):\n{}\n->\n{}",
                    show(rest),
                    show(tail)
                ));
            }
        }
        Stop::Unchecked { what, .. } => {
            if !rest.ends_with(held) {
                return Err("held bytes are not the stream's end".into());
            }
            let all = [tail, held].concat();
            if !http1::same_but_trace_lines(&all, rest) {
                return Err(format!(
                    "after {what}: lines other than trace headers changed:\n{}\n->\n{}",
                    show(rest),
                    show(&all)
                ));
            }
        }
    }
    Ok((framed, seen))
}

/// A head the filter rewrote: each trace header at most once (tracestate may repeat only
/// as the client sent it), what the filter wrote well-formed, every value visible ASCII.
fn check_trace_lines(
    input: &[u8],
    before: &http1::Head,
    output: &[u8],
    after: &http1::Head,
) -> Result<(), String> {
    let sent: Vec<&[u8]> = before
        .fields
        .iter()
        .filter(|f| f.trace)
        .map(|f| &input[f.line.clone()])
        .collect();
    let mut counts = [0usize; http1::TRACE_NAMES.len()];
    for f in after.fields.iter().filter(|f| f.trace) {
        let name = &output[f.name.clone()];
        let value = &output[f.value.clone()];
        let line = &output[f.line.clone()];
        let kept = sent.contains(&line);
        let Some(h) = header_of(name) else {
            return Err(format!("{} taken for a trace header", show(name)));
        };
        let slot = http1::TRACE_NAMES
            .iter()
            .position(|t| t.as_bytes().eq_ignore_ascii_case(name))
            .unwrap_or(0);
        counts[slot] += 1;
        if counts[slot] > 1 && !(h == Header::Tracestate && kept) {
            return Err(format!("{} more than once", show(name)));
        }
        if h == Header::Tracestate {
            if !value.iter().all(|b| (0x20..=0x7e).contains(b)) {
                return Err(format!("tracestate {} not printable ASCII", show(value)));
            }
        } else if !visible_ascii(value) {
            return Err(format!("{}: {} not visible ASCII", show(name), show(value)));
        }
        if !kept {
            let ok = if h == Header::Tracestate {
                tracestate_ok(value)
            } else {
                header_value_ok(h, value)
            };
            if !ok || name != h.name().as_bytes() {
                return Err(format!("wrote {}: {}", show(name), show(value)));
            }
        }
    }
    Ok(())
}
