//! `eddy chaos`: run a bounded job twice, once clean and once under seeded, injected faults, and compare
//! the outputs of its sinks (those that say where their output is, through
//! [`SinkBuilder::output_files`](eddy_api::SinkBuilder::output_files)) as multisets of records.
//!
//! - [`plan`] reads the `chaos:` section (or `--fault` flags) into a [`plan::ChaosSpec`] and expands it,
//!   deterministically from the seed, into a [`plan::Plan`].
//! - [`injector`] is the runtime's [`FaultInjector`](eddy_actors::faults::FaultInjector): it fires the
//!   plan at the task sites and logs every fault it fires.
//! - [`verdict`] compares two outputs and explains the difference.
//! - [`runner`] runs the job clean, then under faults (in-process, or as child `eddy run` processes
//!   killed with SIGKILL), and gathers a [`ChaosReport`].
//! - [`report`] renders the report.
//!
//! [`run`] is the whole thing as a library call, which the tests use.
pub mod injector;
pub mod plan;
pub mod report;
pub mod runner;
pub mod verdict;

pub use report::{ChaosReport, Outcome};
pub use runner::{prepare, run, ChaosError, ChaosOptions, ChaosRun};
pub use verdict::Verdict;

/// SplitMix64's output function: a good 64-bit mix, so that every decision is a pure function of the seed
/// and the site (reproducible whatever the thread interleaving).
pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes a seed with several words into one random-looking word.
pub(crate) fn mix(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(splitmix(seed), |acc, &p| splitmix(acc ^ p))
}

/// A stable hash of a string (FNV-1a), for mixing names and paths into decisions.
pub(crate) fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A word mapped to `[0, 1)`.
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_mix_depends_on_every_part() {
        for i in 0..1000 {
            let u = unit(mix(7, &[i]));
            assert!((0.0..1.0).contains(&u));
        }
        assert_ne!(mix(1, &[2, 3]), mix(1, &[3, 2]));
        assert_ne!(mix(1, &[2]), mix(2, &[2]));
        assert_eq!(mix(5, &[hash_str("a")]), mix(5, &[hash_str("a")]));
    }
}
