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
