//! The `generator` source: deterministic synthetic records (Nexmark-like bids or a keyed sequence),
//! bounded or unbounded, optionally rate-limited.
//!
//! Record `i` is a pure function of `(seed, i)` (also its `date_time`: no wall clock is involved), so
//! the multiset of records is the same at every parallelism and after a restore. The records are dealt
//! to `L` logical splits (split `l` makes records `l, l+L, l+2L, ...`) and subtask `s` of `p` owns the
//! splits `l % p == s`, making their records in increasing index order. A fresh run takes `L` = the
//! smallest multiple of `p` that is at least 128, so subtask `s` makes exactly the records `s, s+p, ...`
//! (even shares); a restored run keeps the `L` of its checkpoint, whatever its parallelism now. A
//! checkpointed position is `L` and the number of records each owned split has made, so a restore
//! continues every split exactly where it stopped and a bounded generator stops at the same total.
//! The rate limit only paces polls.
mod bids;
mod rng;

use bids::Pools;
use eddy_api::schema::{DataType, Field, Schema, SchemaRef};
use eddy_api::snapshot;
use eddy_api::source::SourceProgress;
use eddy_api::{
    Batch, Diagnostic, Diagnostics, EddyError, PlanContext, Result, Source, SourceBuilder, SourcePoll, Spanned,
    TaskInfo,
};
use rng::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Generates synthetic records, deterministically from a seed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// `bids`: Nexmark-like bids with the columns of the bid CSV (`auction`, `bidder`, `price`: int,
    /// `channel`, `url`: string, `date_time`: timestamp_ms, `extra`: string; `date_time` is 1 ms
    /// apart per record, a tenth of the records up to 2 s late). `sequence`: `{ id, key, value: int }`
    /// with `id` = record index, `key` uniform in `0..keys`, `value` uniform in `0..1000`.
    pub kind: GeneratorKind,
    /// Records in total (over all subtasks); omit for an unbounded stream.
    #[serde(default)]
    pub count: Option<u64>,
    /// Records per second for the whole source, shared evenly by its subtasks; omit to generate as
    /// fast as the job consumes.
    #[serde(default)]
    pub rate: Option<Spanned<f64>>,
    /// The same seed gives the same records. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// bids: `date_time` of record 0, in epoch milliseconds. Default 1700000000000 (2023-11-14).
    #[serde(default)]
    pub start_time_ms: Option<Spanned<i64>>,
    /// sequence: the number of distinct keys. Default 1000.
    #[serde(default)]
    pub keys: Option<Spanned<u64>>,
}

fn default_seed() -> u64 {
    42
}

/// What a generator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    /// Nexmark-like bids.
    Bids,
    /// `{ id, key, value }` integers.
    Sequence,
}

#[derive(Clone, Debug)]
enum Kind {
    Bids { pools: Arc<Pools>, start_ms: i64 },
    Sequence { keys: u64 },
}

/// A planned `generator` source.
#[derive(Debug)]
pub struct GeneratorBuilder {
    what: Arc<str>,
    kind: Kind,
    schema: SchemaRef,
    count: Option<u64>,
    rate: Option<f64>,
    seed: u64,
}

impl GeneratorBuilder {
    /// Validates the config (registered as source `generator`).
    pub fn plan(cfg: GeneratorConfig, ctx: &PlanContext<'_>) -> Result<GeneratorBuilder, Diagnostics> {
        let what = format!("generator source `{}`", ctx.node);
        let mut diags = Diagnostics::new();
        if let Some(r) = &cfg.rate {
            if !(r.value.is_finite() && r.value > 0.0) {
                diags.push(
                    Diagnostic::at(
                        r.span,
                        format!("{what}: `rate` must be a positive number of records per second, got {}", r.value),
                    )
                    .with_hint("omit `rate` to generate as fast as possible"),
                );
            }
        }
        let kind = match cfg.kind {
            GeneratorKind::Bids => {
                if let Some(k) = &cfg.keys {
                    diags.push(Diagnostic::at(k.span, format!("{what}: `keys` only applies to kind sequence")));
                }
                let start_ms = cfg.start_time_ms.map_or(bids::BASE_MS, |s| s.value);
                Kind::Bids { pools: Arc::new(Pools::new(cfg.seed)), start_ms }
            }
            GeneratorKind::Sequence => {
                if let Some(s) = &cfg.start_time_ms {
                    diags.push(Diagnostic::at(s.span, format!("{what}: `start_time_ms` only applies to kind bids")));
                }
                let keys = cfg.keys.as_ref().map_or(1000, |k| k.value);
                if let Some(k) = cfg.keys.as_ref().filter(|k| k.value == 0) {
                    diags.push(Diagnostic::at(k.span, format!("{what}: `keys` must be at least 1")));
                }
                Kind::Sequence { keys: keys.max(1) }
            }
        };
        let schema = match kind {
            Kind::Bids { .. } => bids::schema(),
            Kind::Sequence { .. } => Schema::new(vec![
                Field::new("id", DataType::Int),
                Field::new("key", DataType::Int),
                Field::new("value", DataType::Int),
            ]),
        };
        diags.into_result(GeneratorBuilder {
            what: what.into(),
            kind,
            schema: Arc::new(schema),
            count: cfg.count,
            rate: cfg.rate.map(|r| r.value),
            seed: cfg.seed,
        })
    }

    /// The concrete instance for a subtask (what [`SourceBuilder::build`] boxes).
    pub fn instance(&self, task: &TaskInfo) -> GeneratorSource {
        let p = task.parallelism.max(1);
        let n_splits = (SPLITS.div_ceil(p) * p) as u64;
        let mut src = GeneratorSource {
            what: self.what.clone(),
            kind: self.kind.clone(),
            seed: self.seed,
            count: self.count,
            subtask: task.subtask,
            parallelism: p,
            cursor: Cursor { n_splits, owned: Vec::new(), round: 0, at: 0 },
            emitted: 0,
            total: None,
            bucket: self.rate.map(|r| TokenBucket::new(r / p as f64)),
        };
        src.assign(n_splits, &[]);
        src
    }
}

impl SourceBuilder for GeneratorBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn bounded(&self) -> bool {
        self.count.is_some()
    }

    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Source>> {
        Ok(Box::new(self.instance(task)))
    }
}

/// Rate limiting on elapsed time: tokens accrue at `rate` per second up to a small burst.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    cap: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        // 100 ms worth of records, but at least a second's worth up to a batch, so slow rates
        // are not starved by the cap.
        let cap = (rate * 0.1).max(rate.min(1024.0)).max(1.0);
        TokenBucket { rate, cap, tokens: 0.0, last: None }
    }

    /// Takes up to `want` tokens, or says how long to wait for a useful amount.
    fn take(&mut self, now: Instant, want: u64) -> Result<u64, Duration> {
        let last = *self.last.get_or_insert(now);
        let dt = now.saturating_duration_since(last).as_secs_f64();
        self.last = Some(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.cap);
        let k = (self.tokens as u64).min(want);
        if k > 0 {
            self.tokens -= k as f64;
            return Ok(k);
        }
        // Wait for ~5 ms worth (at least one record), so fast rates are served in chunks.
        let target = (want as f64).min(self.cap).min(self.rate * 0.005).max(1.0);
        let secs = ((target - self.tokens) / self.rate).clamp(1e-4, 1.0);
        Err(Duration::from_secs_f64(secs))
    }
}

/// Logical splits of a fresh run at least (rounded up to a multiple of the parallelism): after a
/// restore at another parallelism the shares differ by one split at most, a small fraction.
const SPLITS: usize = 128;

/// More logical splits than any run makes: a corrupt position, not an allocation to attempt.
const MAX_RESTORED_SPLITS: u64 = 1 << 24;

/// A logical split this subtask owns: it makes records `l + k * n_splits` for `k` in `next..end`.
#[derive(Clone, Copy, Debug)]
struct GenSplit {
    l: u64,
    next: u64,
    /// Records of the split in total (`u64::MAX`: unbounded).
    end: u64,
}

/// Walks the owned splits round by round (round `k` makes record `l + k * n_splits` of each split `l`),
/// which yields increasing record indexes; after a restore, splits that are ahead wait for the others.
#[derive(Debug)]
struct Cursor {
    n_splits: u64,
    owned: Vec<GenSplit>,
    round: u64,
    /// Index into `owned` of the next split to visit in this round.
    at: usize,
}

impl Cursor {
    /// The index of the next record, or `None` when every split is done.
    #[inline]
    fn next(&mut self) -> Option<u64> {
        loop {
            if self.at == self.owned.len() {
                self.at = 0;
                self.round = self.owned.iter().filter(|s| s.next < s.end).map(|s| s.next).min()?;
            }
            let s = &mut self.owned[self.at];
            self.at += 1;
            if s.next == self.round && s.next < s.end {
                s.next += 1;
                return Some(s.l + self.round * self.n_splits);
            }
        }
    }
}

/// What a generator subtask checkpoints: the number of logical splits and, per owned split, how many
/// records it has made.
#[derive(Debug, Serialize, Deserialize)]
struct GenPosition {
    n_splits: u64,
    splits: Vec<(u64, u64)>,
}

/// One subtask of a `generator` source.
pub struct GeneratorSource {
    what: Arc<str>,
    kind: Kind,
    seed: u64,
    count: Option<u64>,
    subtask: usize,
    parallelism: usize,
    cursor: Cursor,
    emitted: u64,
    /// Records this subtask makes in total (bounded).
    total: Option<u64>,
    bucket: Option<TokenBucket>,
}

impl GeneratorSource {
    /// Deals the records to `n` logical splits and takes those with `l % parallelism == subtask`, each
    /// resuming after the records `made[l]` says it has made (missing: none).
    fn assign(&mut self, n: u64, made: &[Option<u64>]) {
        let count = self.count;
        self.cursor.n_splits = n;
        let owned: Vec<GenSplit> = (self.subtask as u64..n)
            .step_by(self.parallelism)
            .map(|l| {
                let end = count.map_or(u64::MAX, |c| if l < c { (c - l).div_ceil(n) } else { 0 });
                let next = made.get(l as usize).copied().flatten().unwrap_or(0).min(end);
                GenSplit { l, next, end }
            })
            .collect();
        self.emitted = owned.iter().map(|s| s.next).sum();
        self.total = count.map(|_| owned.iter().map(|s| s.end).sum());
        self.cursor.at = owned.len();
        self.cursor.owned = owned;
    }

    /// [`Source::poll`] at a given time (the rate limiter's clock; tests pass their own).
    pub fn poll_at(&mut self, out: &mut Batch, max_rows: usize, now: Instant) -> Result<SourcePoll> {
        let mut n = max_rows as u64;
        if let Some(total) = self.total {
            n = n.min(total - self.emitted);
            if n == 0 {
                return Ok(SourcePoll::Finished);
            }
        }
        if let Some(bucket) = &mut self.bucket {
            match bucket.take(now, n) {
                Ok(k) => n = k,
                Err(wait) => return Ok(SourcePoll::Idle(wait)),
            }
        }
        let mut made = 0;
        match &self.kind {
            Kind::Bids { pools, start_ms } => {
                while made < n {
                    let Some(i) = self.cursor.next() else { break };
                    pools.push_bid(out, self.seed, *start_ms, i);
                    made += 1;
                }
            }
            Kind::Sequence { keys } => {
                while made < n {
                    let Some(i) = self.cursor.next() else { break };
                    let mut r = Rng::for_record(self.seed, i);
                    out.push_int(i as i64);
                    out.push_int(r.below(*keys) as i64);
                    out.push_int(r.below(1000) as i64);
                    made += 1;
                }
            }
        }
        self.emitted += made;
        Ok(match self.total {
            Some(t) if self.emitted >= t => SourcePoll::Finished,
            // Only when there is no split to make records for (more subtasks than splits).
            None if made < n => SourcePoll::Finished,
            _ => SourcePoll::Ready,
        })
    }
}

impl Source for GeneratorSource {
    fn open(&mut self, _task: &TaskInfo) -> Result<()> {
        if let Some(b) = &mut self.bucket {
            b.last = Some(Instant::now());
        }
        Ok(())
    }

    fn poll(&mut self, out: &mut Batch, max_rows: usize) -> Result<SourcePoll> {
        self.poll_at(out, max_rows, Instant::now())
    }

    fn progress(&self) -> SourceProgress {
        SourceProgress { done: self.emitted, total: self.total }
    }

    fn snapshot_position(&mut self, _checkpoint: u64) -> Result<Option<Vec<u8>>> {
        let pos = GenPosition {
            n_splits: self.cursor.n_splits,
            splits: self.cursor.owned.iter().map(|s| (s.l, s.next)).collect(),
        };
        Ok(Some(snapshot::encode(&pos)?))
    }

    /// Takes the number of logical splits from the checkpoint and resumes the splits owned now.
    fn restore_position(&mut self, positions: &[Vec<u8>]) -> Result<()> {
        let mut n = None;
        let mut made = Vec::new();
        for bytes in positions.iter().filter(|b| !b.is_empty()) {
            let pos: GenPosition = snapshot::decode(bytes, &format!("the position of {}", self.what))?;
            let bad = |msg: String| EddyError::user(format!("{}: cannot restore: {msg}", self.what));
            match n {
                None if pos.n_splits == 0 || pos.n_splits > MAX_RESTORED_SPLITS => {
                    return Err(bad(format!("the checkpoint has {} logical splits", pos.n_splits)));
                }
                None => {
                    n = Some(pos.n_splits);
                    made = vec![None; pos.n_splits as usize];
                }
                Some(n) if n != pos.n_splits => {
                    return Err(bad(format!(
                        "the subtasks of the checkpoint disagree on the logical splits ({n} and {})",
                        pos.n_splits
                    )));
                }
                Some(_) => {}
            }
            for (l, next) in pos.splits {
                if let Some(slot) = made.get_mut(l as usize) {
                    *slot = Some(next);
                }
            }
        }
        if let Some(n) = n {
            self.assign(n, &made);
        }
        Ok(())
    }
}

/// The record hash, for other tests that need cheap deterministic noise.
#[cfg(test)]
pub(crate) fn test_mix(x: u64) -> u64 {
    rng::mix(x.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// The bid schema, for other tests.
#[cfg(test)]
pub(crate) fn test_bids_schema() -> Schema {
    bids::schema()
}

#[cfg(test)]
mod tests;
