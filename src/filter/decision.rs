//! The decision line: what the filter read, decided and wrote for one request, as one
//! `key=value` log line (logged at debug; built only when debug is on). The keys are the
//! same in every position, so one grep or log query reads them all:
//!
//! `decision position=network source=tracecontext trace_id=4bf92f3577b34da6a3ce929d0e0e4736
//! sampled=1 wrote=b3,x-b3-traceid,x-b3-spanid,x-b3-sampled removed=- invalid=- flags=-
//! request_id=9c1a8d31-6f0e-4a43-8f5e-2b7c1d0e9f11 dry_run=false`
//!
//! Values are never empty (`-` stands for none) and hold no spaces, so a line splits on
//! spaces; the one value a client chooses, `request_id`, is escaped and bounded.

use std::fmt;

use crate::codec::Header;
use crate::config::Position;
use crate::context::Sampling;
use crate::policy::{Op, Plan, Source};
use crate::printable::printable;

/// The bytes of a client's `x-request-id` shown (a UUID is 36); longer ones end in `...`.
pub const MAX_REQUEST_ID_SHOWN: usize = 64;

/// Which of the plan's operations the request got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// All of them.
    All,
    /// Network position, at Envoy's header limits under `trust`: only removals (every
    /// write became a removal of that header where the request carried it; the plan shown
    /// is that one).
    Removals,
    /// Network position, at Envoy's header limits: none.
    Nothing,
}

/// One request's decision, displayed as the decision line (without the `tracejoin: `
/// prefix of the filter's log lines).
#[derive(Clone, Copy, Debug)]
pub struct Decision<'a> {
    pub position: Position,
    pub plan: &'a Plan,
    pub applied: Applied,
    /// The request's `x-request-id`, as the client (or Envoy) sent it.
    pub request_id: Option<&'a [u8]>,
    /// The trace headers were removed instead (a call to a third party).
    pub stripped: bool,
    pub dry_run: bool,
}

/// The decision line of one request, as the filter logs it (for callers outside the filter).
pub fn decision_line(decision: &Decision<'_>) -> String {
    decision.to_string()
}

impl Decision<'_> {
    /// The operation the request got on `header`.
    fn op(&self, header: Header) -> &Op {
        match self.applied {
            Applied::Nothing => &Op::Keep,
            Applied::All | Applied::Removals => self.plan.op(header),
        }
    }

    /// Writes the names of the headers whose operation `pick` selects, comma-separated.
    fn headers(&self, f: &mut fmt::Formatter<'_>, pick: fn(&Op) -> bool) -> fmt::Result {
        let picked = Header::ALL.into_iter().filter(|h| pick(self.op(*h)));
        list(f, picked.map(Header::name))
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decision position={} source=", self.position.name())?;
        let o = &self.plan.outcome;
        match o.source {
            Source::Extracted(format) => f.write_str(format.name())?,
            // Envoy's tracer wrote the context before the filter (upstream position).
            Source::Injected(format) => write!(f, "injected.{}", format.name())?,
            Source::Generated => f.write_str("generated")?,
            Source::LeftToTracer => f.write_str("left_to_tracer")?,
        }
        f.write_str(" trace_id=")?;
        match &self.plan.context {
            Some(ctx) => ctx
                .trace_id
                .0
                .iter()
                .try_for_each(|b| write!(f, "{b:02x}"))?,
            None => f.write_str("-")?,
        }
        let sampled = match self.plan.context.map(|c| c.sampling) {
            Some(Sampling::Sampled | Sampling::Debug) => "1",
            Some(Sampling::NotSampled) => "0",
            Some(Sampling::Deferred) | None => "-",
        };
        write!(f, " sampled={sampled} wrote=")?;
        self.headers(f, |op| matches!(op, Op::Set(_) | Op::SetText(_)))?;
        f.write_str(" removed=")?;
        self.headers(f, |op| *op == Op::Remove)?;
        f.write_str(" invalid=")?;
        let invalid = o
            .invalid
            .iter()
            .filter(|(_, invalid)| **invalid)
            .map(|(format, _)| format.name())
            .chain(o.invalid_tracestate.then_some("tracestate"));
        list(f, invalid)?;
        f.write_str(" flags=")?;
        let flags = [
            (o.conflict, "conflict"),
            (o.bridged, "bridged"),
            (o.continued_over_tracer, "continued_over_tracer"),
            (o.restarted, "restarted"),
            (o.decided.is_some(), "decided"),
            (self.stripped, "stripped"),
            (self.applied != Applied::All, "at_limit"),
        ];
        list(f, flags.iter().filter(|(on, _)| *on).map(|(_, name)| *name))?;
        f.write_str(" request_id=")?;
        match self.request_id {
            Some(id) if !id.is_empty() => f.write_str(&printable(id, MAX_REQUEST_ID_SHOWN))?,
            _ => f.write_str("-")?,
        }
        write!(f, " dry_run={}", self.dry_run)
    }
}

/// Names, comma-separated; `-` for none.
fn list<'n>(f: &mut fmt::Formatter<'_>, names: impl Iterator<Item = &'n str>) -> fmt::Result {
    let mut first = true;
    for name in names {
        f.write_str(if first { "" } else { "," })?;
        f.write_str(name)?;
        first = false;
    }
    if first {
        f.write_str("-")?;
    }
    Ok(())
}

/// Logs the decision line at debug. Callers ask `log::log_enabled!(log::Level::Debug)`
/// first, so that at the default levels not even the [`Decision`] is built.
pub fn log_decision(decision: Decision<'_>) {
    log::debug!("tracejoin: {decision}");
}

#[cfg(test)]
mod tests;
