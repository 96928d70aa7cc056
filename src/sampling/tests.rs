//! Ratio sampling: deterministic per trace id and proportional to the ratio.

use rand::RngCore;
use rand::rngs::SmallRng;

use crate::context::TraceId;
use crate::sampling::RatioSampler;
use crate::testing::generate::*;

// ---------------------------------------------------------------------------------------
// (d) Ratio sampling
// ---------------------------------------------------------------------------------------

fn uniform_trace_id(r: &mut SmallRng) -> TraceId {
    loop {
        let mut b = [0u8; 16];
        r.fill_bytes(&mut b);
        let id = TraceId(b);
        if id.is_valid() {
            return id;
        }
    }
}

#[test]
fn ratio_sampling_is_deterministic_and_proportional() {
    const N: usize = 20_000;
    let mut r = rng(0x7ace_0006);
    let ids: Vec<TraceId> = (0..N).map(|_| uniform_trace_id(&mut r)).collect();
    let ratios = [0.0, 0.1, 0.5, 0.9, 1.0];
    let samplers = ratios.map(RatioSampler::new);
    let mut kept = [0usize; 5];
    for id in &ids {
        let decisions = samplers.map(|s| s.sample(id));
        for (k, d) in kept.iter_mut().zip(decisions) {
            *k += usize::from(d);
        }
        // The same id always gets the same decision, from any sampler of that ratio.
        for (s, d) in samplers.iter().zip(decisions) {
            assert_eq!(s.sample(id), d);
            assert_eq!(RatioSampler::new(s.ratio()).sample(id), d);
        }
        // The decision depends only on the 56 rightmost bits of the id.
        let mut other = *id;
        other.0[..9].copy_from_slice(&[0xa5; 9]);
        for (s, d) in samplers.iter().zip(decisions) {
            assert_eq!(s.sample(&other), d);
        }
        // Consistent sampling: kept at one ratio, kept at every higher one.
        for w in decisions.windows(2) {
            assert!(!w[0] || w[1], "{id:?}: {decisions:?}");
        }
    }
    assert_eq!(kept[0], 0, "ratio 0 keeps nothing");
    assert_eq!(kept[4], N, "ratio 1 keeps everything");
    for (ratio, k) in ratios.iter().zip(kept).skip(1).take(3) {
        let fraction = k as f64 / N as f64;
        assert!(
            (fraction - ratio).abs() <= 0.02,
            "ratio {ratio}: sampled {fraction}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// OpenTelemetry thresholds (`ot=th:`) and explicit randomness (`ot=rv:`)
// ---------------------------------------------------------------------------------------

/// The precision-4 column of the 1-in-N table in opentelemetry-specification,
/// trace/tracestate-probability-sampling.md ("Converting floating-point probability to
/// threshold value"), which the SDKs' default precision produces.
#[test]
fn thresholds_round_as_the_specification_table() {
    let table = [
        (1.0, "0"),
        (0.5, "8"),
        (1.0 / 3.0, "aaab"),
        (0.25, "c"),
        (0.2, "cccd"),
        (0.125, "e"),
        (0.1, "e666"),
        (0.0625, "f"),
        (0.01, "fd70a"),
        (0.001, "ffbe77"),
        (0.0001, "fff9724"),
        (0.00001, "ffff583a"),
        (0.000001, "ffffef39"),
    ];
    for (p, th) in table {
        let s = RatioSampler::new(p);
        assert_eq!(s.th(), Some(th), "p = {p}");
        // The decisions are made with exactly the threshold `th` encodes.
        let digits = format!("{th:0<14}");
        assert_eq!(
            s.threshold(),
            u64::from_str_radix(&digits, 16).unwrap(),
            "p = {p}"
        );
        assert!(s.sample_randomness(s.threshold()));
        assert!(s.threshold() == 0 || !s.sample_randomness(s.threshold() - 1));
    }
    // Never sampling is no probability sampling: no threshold to write.
    assert_eq!(RatioSampler::new(0.0).th(), None);
    assert!(!RatioSampler::new(0.0).sample_randomness((1 << 56) - 1));
}

#[test]
fn ot_sub_members_are_read_and_rewritten() {
    use crate::sampling::{OtState, ot_value, parse_ot, with_th};
    let parts: [&[u8]; 2] = [b"congo=t61rcWkgMzE", b" ot=th:c;rv:6e6d1a75832a2f;x:1 ,a=b"];
    let ot = ot_value(&parts).unwrap();
    assert_eq!(ot, b"th:c;rv:6e6d1a75832a2f;x:1");
    assert_eq!(
        parse_ot(ot),
        OtState {
            th: Some(0xc0_0000_0000_0000),
            rv: Some(0x6e_6d1a_7583_2a2f)
        }
    );
    // th: 1 to 14 lowercase hex digits; rv: exactly 14.
    for bad in ["th:", "th:C", "th:000000000000000", "th:g"] {
        assert_eq!(parse_ot(bad.as_bytes()).th, None, "{bad}");
    }
    for bad in [
        "rv:6e6d1a75832a2",
        "rv:6E6D1A75832A2F",
        "rv:6e6d1a75832a2f0",
    ] {
        assert_eq!(parse_ot(bad.as_bytes()).rv, None, "{bad}");
    }
    assert_eq!(
        with_th(Some(ot), Some("fd70a")).as_deref(),
        Some("th:fd70a;rv:6e6d1a75832a2f;x:1")
    );
    assert_eq!(
        with_th(Some(ot), None).as_deref(),
        Some("rv:6e6d1a75832a2f;x:1")
    );
    assert_eq!(with_th(Some(b"th:8"), None), None);
    assert_eq!(with_th(None, Some("0")).as_deref(), Some("th:0"));
}
