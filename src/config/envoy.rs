//! The Envoy release around the filter, whose tracer the policy models: from the plugin
//! configuration, or read at load from the node Envoy describes to the host.

use std::fmt;

/// An Envoy release as `major.minor` (patch releases do not change what the policy models).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct EnvoyVersion {
    pub major: u32,
    pub minor: u32,
}

impl EnvoyVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        EnvoyVersion { major, minor }
    }

    /// The newest release whose behaviour is measured (docs/envoy-versions.md); an unknown
    /// or newer release takes its model.
    pub const NEWEST_MEASURED: EnvoyVersion = EnvoyVersion::new(1, 40);
    /// The oldest release measured; older ones take its model, untested.
    pub const OLDEST_MEASURED: EnvoyVersion = EnvoyVersion::new(1, 36);
    /// Zipkin's `trace_context_option` (the `zipkin_w3c` tracer) exists from this release on.
    pub const ZIPKIN_W3C_SINCE: EnvoyVersion = EnvoyVersion::new(1, 36);

    /// `1.36` or `1.36.4` (decimal numbers; a patch is read and ignored).
    pub fn parse(text: &str) -> Option<EnvoyVersion> {
        let mut parts = text.split('.');
        let number = |part: Option<&str>| -> Option<u32> {
            let part = part?;
            if part.is_empty() || part.len() > 6 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        if let Some(patch) = parts.next() {
            number(Some(patch))?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(EnvoyVersion::new(major, minor))
    }

    /// The release from Envoy's `BuildVersion` message, serialized as the host returns the
    /// attribute `xds.node.user_agent_build_version`: field 1 (`version`, a
    /// `SemanticVersion`) holds `major_number` (1) and `minor_number` (2) as varints. Other
    /// fields are skipped; anything malformed reads as None.
    pub fn from_build_version_proto(bytes: &[u8]) -> Option<EnvoyVersion> {
        let version = proto_fields(bytes)?
            .into_iter()
            .find_map(|(field, value)| match (field, value) {
                (1, ProtoValue::Bytes(v)) => Some(v),
                _ => None,
            })?;
        let (mut major, mut minor) = (0u64, 0u64);
        for (field, value) in proto_fields(version)? {
            match (field, value) {
                (1, ProtoValue::Varint(n)) => major = n,
                (2, ProtoValue::Varint(n)) => minor = n,
                _ => {}
            }
        }
        let version = EnvoyVersion::new(u32::try_from(major).ok()?, u32::try_from(minor).ok()?);
        // A build without version numbers reports 0.0.
        (version.major > 0).then_some(version)
    }
}

enum ProtoValue<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The top-level fields of a protobuf message, in order; None if it is malformed.
fn proto_fields(mut bytes: &[u8]) -> Option<Vec<(u64, ProtoValue<'_>)>> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = rest;
        Some(head)
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let value = match key & 7 {
            0 => ProtoValue::Varint(varint(&mut bytes)?),
            1 => take(&mut bytes, 8).map(|_| ProtoValue::Fixed)?,
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                ProtoValue::Bytes(take(&mut bytes, len)?)
            }
            5 => take(&mut bytes, 4).map(|_| ProtoValue::Fixed)?,
            _ => return None,
        };
        fields.push((key >> 3, value));
    }
    Some(fields)
}

impl fmt::Display for EnvoyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Where the Envoy version the policy models came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VersionSource {
    /// `envoy_version` in the plugin configuration (wins over detection).
    Configured,
    /// Read from the host at load (`node.user_agent_build_version`).
    Detected,
    /// Neither: the newest measured model.
    Assumed,
}

impl VersionSource {
    /// As the load log line says it.
    pub fn describe(self) -> &'static str {
        match self {
            VersionSource::Configured => "configured",
            VersionSource::Detected => "detected",
            VersionSource::Assumed => "not detected: newest measured model",
        }
    }
}
