//! The decoder against RFC 7541's examples, and written-back blocks against a second
//! decoder standing for Envoy's.

use super::*;
use crate::testing::generate::{below, one_in, rng};
use crate::testing::h2::{Encoder, Fields, Style};

fn hex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn list(block: &Block) -> Vec<(String, String)> {
    block
        .fields()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn table(t: &Table) -> Vec<(Vec<u8>, Vec<u8>)> {
    t.entries().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

#[test]
fn rfc_7541_c4_requests_with_huffman() {
    let mut d = Decoder::default();
    let first = d
        .decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))
        .unwrap();
    assert_eq!(
        list(&first),
        pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com")
        ])
    );
    let second = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf")).unwrap();
    assert_eq!(
        list(&second)[4],
        ("cache-control".into(), "no-cache".into())
    );
    let third = d
        .decode(&hex(
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ))
        .unwrap();
    assert_eq!(
        list(&third),
        pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value")
        ])
    );
    assert_eq!(d.client_table().size(), (164, 4096));
    assert_eq!(
        table(d.client_table()),
        vec![
            (b"custom-key".to_vec(), b"custom-value".to_vec()),
            (b"cache-control".to_vec(), b"no-cache".to_vec()),
            (b":authority".to_vec(), b"www.example.com".to_vec()),
        ]
    );
}

#[test]
fn rfc_7541_c1_integers() {
    let mut at = 0;
    assert_eq!(integer(&[0x0a], &mut at, 5), Ok(10));
    at = 0;
    assert_eq!(integer(&[0x1f, 0x9a, 0x0a], &mut at, 5), Ok(1337));
    assert_eq!(at, 3);
    at = 0;
    assert_eq!(integer(&[0x2a], &mut at, 8), Ok(42));
    for value in [0, 14, 15, 16, 127, 128, 1337, 1 << 20] {
        let mut out = Vec::new();
        integer_to(&mut out, 0, 4, value);
        at = 0;
        assert_eq!(integer(&out, &mut at, 4), Ok(value));
        assert_eq!(at, out.len());
    }
    at = 0;
    assert_eq!(
        integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x0f], &mut at, 5),
        Err(HpackError::Integer)
    );
    at = 0;
    assert_eq!(
        integer(&[0x1f, 0x80], &mut at, 5),
        Err(HpackError::Truncated)
    );
}

#[test]
fn errors_that_end_the_mirror() {
    let mut d = Decoder::default();
    // Index 0, and past the table.
    assert_eq!(d.decode(&[0x80]).unwrap_err(), HpackError::Index);
    assert_eq!(d.decode(&[0xbe]).unwrap_err(), HpackError::Index);
    // A size update after a field.
    assert_eq!(d.decode(&[0x82, 0x20]).unwrap_err(), HpackError::SizeUpdate);
    // Over the cap.
    let mut big = Vec::new();
    integer_to(&mut big, 0x20, 5, MAX_TABLE_SIZE + 1);
    assert_eq!(d.decode(&big).unwrap_err(), HpackError::TableTooLarge);
    // A string cut off.
    assert_eq!(
        d.decode(&[0x40, 0x03, b'a']).unwrap_err(),
        HpackError::Truncated
    );
    // Bad Huffman padding.
    assert_eq!(
        d.decode(&[0x40, 0x81, 0x00, 0x00]).unwrap_err(),
        HpackError::Huffman
    );
}

#[test]
fn size_updates_evict() {
    let mut e = Encoder::default();
    let mut d = Decoder::default();
    let mut block = Vec::new();
    e.field(&mut block, b"a", b"1", Style::Indexing);
    e.field(&mut block, b"b", b"2", Style::Indexing);
    d.decode(&block).unwrap();
    assert_eq!(d.client_table().size(), (68, 4096));
    let mut block = Vec::new();
    e.size_update(&mut block, 40);
    e.field(&mut block, b"c", b"3", Style::Indexing);
    d.decode(&block).unwrap();
    // 34 bytes fit in 40 once the older entries are gone.
    assert_eq!(table(d.client_table()), e.table().to_vec());
    assert_eq!(d.client_table().size(), (34, 40));
    // An entry larger than the table empties it.
    let mut block = Vec::new();
    e.field(&mut block, b"long-name", b"long-value", Style::Indexing);
    d.decode(&block).unwrap();
    assert_eq!(d.client_table().size(), (0, 40));
    assert!(e.table().is_empty());
}

const TRACE: &[&[u8]] = &[b"traceparent", b"x-b3-traceid", b"b3", b"tracestate"];

/// Random requests: ordinary fields, repeated ones, and trace headers whose values repeat
/// (an app's span calls several times with one traceparent).
fn request(r: &mut rand::rngs::SmallRng, n: usize) -> Fields {
    let mut fields: Fields = vec![
        (b":method".to_vec(), b"GET".to_vec()),
        (b":path".to_vec(), format!("/p{}", below(r, 4)).into_bytes()),
        (b":authority".to_vec(), b"svc:8080".to_vec()),
    ];
    for _ in 0..below(r, 6) {
        let name = if one_in(r, 2) {
            TRACE[below(r, TRACE.len())].to_vec()
        } else {
            format!("x-h{}", below(r, 5)).into_bytes()
        };
        let value = format!("{}-{}", n % 3, below(r, 3)).repeat(1 + below(r, 8));
        fields.push((name, value.into_bytes()));
    }
    fields
}

/// Blocks written back with random trace-header edits decode, with Envoy's decoder, to the
/// client's fields with exactly those edits; the filter's view of Envoy's table is Envoy's.
#[test]
fn written_back_blocks_decode_to_the_edited_fields() {
    for seed in 0..200u64 {
        let mut r = rng(seed);
        let mut client = Encoder::default();
        let mut mirror = Decoder::default();
        let mut envoy = Decoder::default();
        for n in 0..30 {
            let fields = request(&mut r, n);
            let bytes = client.block(&mut r, &fields);
            let block = mirror.decode(&bytes).unwrap();
            let got: Fields = block
                .fields()
                .map(|(a, b)| (a.to_vec(), b.to_vec()))
                .collect();
            assert_eq!(got, fields, "seed {seed} block {n}");
            assert_eq!(table(mirror.client_table()), client.table().to_vec());
            let replacement = format!("new-{n}").into_bytes();
            let edits: Vec<Edit> = block
                .representations
                .iter()
                .map(|rep| {
                    let (name, _) = block.field(rep);
                    if rep.kind == Kind::SizeUpdate || !TRACE.contains(&name) || one_in(&mut r, 3) {
                        Edit::Keep
                    } else if one_in(&mut r, 2) {
                        Edit::Drop
                    } else {
                        Edit::Replace(b"traceparent", &replacement)
                    }
                })
                .collect();
            let added: Vec<(&[u8], &[u8])> = if one_in(&mut r, 2) {
                vec![(b"x-b3-spanid", b"00f067aa0ba902b7")]
            } else {
                vec![]
            };
            let mut expected: Fields = Vec::new();
            for (rep, edit) in block.representations.iter().zip(&edits) {
                if rep.kind == Kind::SizeUpdate {
                    continue;
                }
                match edit {
                    Edit::Keep => {
                        let (a, b) = block.field(rep);
                        expected.push((a.to_vec(), b.to_vec()));
                    }
                    Edit::Drop => {}
                    Edit::Replace(a, b) => expected.push((a.to_vec(), b.to_vec())),
                }
            }
            expected.extend(added.iter().map(|(a, b)| (a.to_vec(), b.to_vec())));
            let out = mirror
                .encode(&bytes, &block, &edits, &added)
                .unwrap_or_else(|| bytes.clone());
            let decoded = envoy.decode(&out).unwrap();
            let got: Fields = decoded
                .fields()
                .map(|(a, b)| (a.to_vec(), b.to_vec()))
                .collect();
            assert_eq!(got, expected, "seed {seed} block {n}");
            assert_eq!(
                table(mirror.envoy_table()),
                table(envoy.client_table()),
                "seed {seed} block {n}"
            );
            assert_eq!(mirror.envoy_table().size(), envoy.client_table().size());
        }
    }
}

/// A block nothing changes, while the tables agree, is not written back.
#[test]
fn unchanged_blocks_are_not_written() {
    let mut r = rng(1);
    let mut client = Encoder::default();
    let mut mirror = Decoder::default();
    let fields = request(&mut r, 0);
    let bytes = client.block(&mut r, &fields);
    let block = mirror.decode(&bytes).unwrap();
    let keep = vec![Edit::Keep; block.representations.len()];
    assert_eq!(mirror.encode(&bytes, &block, &keep, &[]), None);
}

/// Dropping a field that entered the table: Envoy's table lacks it, and a later reference
/// to it is written so that Envoy decodes the client's field; once evicted from both, the
/// tables agree again.
#[test]
fn a_dropped_indexed_literal_is_referred_to_by_value_later() {
    let mut client = Encoder::default();
    let mut mirror = Decoder::default();
    let mut envoy = Decoder::default();
    let mut bytes = Vec::new();
    client.field(&mut bytes, b":method", b"GET", Style::Indexing);
    client.field(&mut bytes, b"traceparent", b"bad", Style::Indexing);
    client.field(&mut bytes, b"x-a", b"1", Style::Indexing);
    let block = mirror.decode(&bytes).unwrap();
    let out = mirror
        .encode(&bytes, &block, &[Edit::Keep, Edit::Drop, Edit::Keep], &[])
        .unwrap();
    assert_eq!(
        list(&envoy.decode(&out).unwrap()),
        pairs(&[(":method", "GET"), ("x-a", "1")])
    );
    assert_ne!(mirror.envoy_table(), mirror.client_table());
    // The client refers to x-a (62 for it, 62 for Envoy as well: newest first) and to
    // traceparent (63 for it; Envoy holds no such entry).
    let mut bytes = Vec::new();
    client.field(&mut bytes, b"x-a", b"1", Style::Indexing);
    client.field(&mut bytes, b"traceparent", b"bad", Style::Indexing);
    client.field(&mut bytes, b"traceparent", b"other", Style::Indexing);
    assert_eq!(bytes[..2], [0xbe, 0xbf]);
    let block = mirror.decode(&bytes).unwrap();
    let keep = vec![Edit::Keep; 3];
    let out = mirror.encode(&bytes, &block, &keep, &[]).unwrap();
    assert_eq!(
        list(&envoy.decode(&out).unwrap()),
        pairs(&[
            ("x-a", "1"),
            ("traceparent", "bad"),
            ("traceparent", "other")
        ])
    );
    assert_eq!(table(mirror.envoy_table()), table(envoy.client_table()));
    // A size update to 0 empties both tables: they agree again.
    let mut bytes = Vec::new();
    client.size_update(&mut bytes, 0);
    client.size_update(&mut bytes, 4096);
    client.field(&mut bytes, b":method", b"GET", Style::Indexing);
    let block = mirror.decode(&bytes).unwrap();
    let out = mirror
        .encode(&bytes, &block, &[Edit::Keep; 3], &[])
        .unwrap();
    assert_eq!(out, bytes);
    envoy.decode(&out).unwrap();
    assert_eq!(mirror.envoy_table(), mirror.client_table());
    let block = mirror.decode(&[0x82]).unwrap();
    assert_eq!(mirror.encode(&[0x82], &block, &[Edit::Keep], &[]), None);
}

/// One-byte references to a 4 KiB entry would decode a 16 KB block into 64 MB: past the cap
/// the fields are not kept (the table still follows), and the block is marked over.
#[test]
fn a_block_decoding_past_the_cap_keeps_nothing_more() {
    let mut d = Decoder::with_cap(60 * 1024);
    // `a: xxx...`, 4,095 bytes in the table: a literal with incremental indexing.
    let mut first = vec![0x40, 0x01, b'a'];
    integer_to(&mut first, 0, 7, 4062);
    first.extend(std::iter::repeat_n(b'x', 4062));
    let block = d.decode(&first).unwrap();
    assert!(!block.over);
    let bomb = vec![0xbe; 16_000];
    let block = d.decode(&bomb).unwrap();
    assert!(block.over);
    assert!(
        block.arena.len() <= 60 * 1024 + 4096,
        "{}",
        block.arena.len()
    );
    assert!(block.representations.len() < 20);
    // A literal past the cap still enters the table.
    let mut more = Vec::new();
    Encoder::default().field(&mut more, b"x-late", b"1", Style::Indexing);
    let mut bomb_then_literal = bomb.clone();
    bomb_then_literal.extend(&more);
    let block = d.decode(&bomb_then_literal).unwrap();
    assert!(block.over);
    assert_eq!(d.client_table().get(62), Some((&b"x-late"[..], &b"1"[..])));
    // Nothing is written back from a block over the cap.
    assert_eq!(d.encode(&bomb, &block, &[], &[(b"b3", b"1")]), None);
}

/// Extension bytes of zero pad an integer as Envoy's decoders allow (up to 10 of them); a
/// value past 32 bits is refused.
#[test]
fn integers_padded_with_zero_bytes() {
    let mut d = Decoder::default();
    d.decode(&[0x3f, 0xe1, 0x9f, 0x80, 0x80, 0x00]).unwrap();
    assert_eq!(d.client_table().size(), (0, 4096));
    let mut at = 0;
    let padded = [
        0x1f, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
    ];
    assert_eq!(integer(&padded, &mut at, 5), Ok(32));
    at = 0;
    let too_long = [
        0x1f, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
    ];
    assert_eq!(integer(&too_long, &mut at, 5), Err(HpackError::Integer));
    at = 0;
    assert_eq!(
        integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut at, 5),
        Err(HpackError::Integer)
    );
    at = 0;
    assert_eq!(
        integer(&[0x1f, 0xe0, 0xff, 0xff, 0xff, 0x0f], &mut at, 5),
        Ok(u32::MAX as usize)
    );
}
