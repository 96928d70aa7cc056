//! The proxy-wasm serialized header map, as a host hands it to the filter: a u32 count,
//! then (key length, value length) u32 pairs, then each key and value followed by a NUL.

/// Iterates over a serialized map. Malformed input ends the iteration instead of panicking.
pub fn pairs(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
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

/// Builds the layout [`pairs`] reads: what a host hands to the filter.
pub fn serialize<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Vec<u8> {
    let pairs: Vec<(K, V)> = pairs.into_iter().collect();
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in &pairs {
        out.extend_from_slice(&(k.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (k, v) in &pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}
