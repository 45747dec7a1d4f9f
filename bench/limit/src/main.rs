//! The practical limit on this machine: a hand-written, single-threaded loop that parses the bid CSV
//! and does the work of each benchmark query, with no framework in between. `bench/run.sh` compares
//! Eddy against it.
//!
//! Usage: `eddy-bench-limit <q1|q2|count|window|session|lines> <bids.csv>`; prints
//! `limit <query> n=<N> wall_s=<..> rec_per_s=<..>`.
//!
//! `window`: 10 s tumbling event-time windows per auction, count and max(price), fired when the
//! watermark (largest timestamp - 2 s - 1 ms) passes a window's end. `session`: sessions per bidder
//! with a 10 s gap (merging on out-of-order input), count, fired the same way.
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::Read;
use std::process::ExitCode;
use std::time::Instant;

/// One parsed bid, borrowing its strings from the read buffer.
struct Bid<'a> {
    auction: i64,
    bidder: i64,
    price: i64,
    channel: &'a str,
    url: &'a str,
    date_time: i64,
    extra: &'a str,
}

/// The straightforward parse: validate the line once, split on commas, `str::parse` the numbers.
fn parse(line: &[u8]) -> Option<Bid<'_>> {
    let line = std::str::from_utf8(line).ok()?;
    let mut it = line.split(',');
    Some(Bid {
        auction: it.next()?.parse().ok()?,
        bidder: it.next()?.parse().ok()?,
        price: it.next()?.parse().ok()?,
        channel: it.next()?,
        url: it.next()?,
        date_time: it.next()?.parse().ok()?,
        extra: it.next()?,
    })
}

/// Calls `f` for every complete line of the file, reading it in 4 MiB chunks.
fn for_each_line(path: &str, mut f: impl FnMut(&[u8])) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 4 << 20];
    let (mut start, mut end, mut n) = (0usize, 0usize, 0u64);
    loop {
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let read = file.read(&mut buf[end..])?;
        if read == 0 {
            if end > start {
                f(&buf[start..end]);
                n += 1;
            }
            return Ok(n);
        }
        end += read;
        while let Some(pos) = memchr::memchr(b'\n', &buf[start..end]) {
            f(&buf[start..start + pos]);
            n += 1;
            start += pos + 1;
        }
    }
}

const WINDOW_MS: i64 = 10_000;
const OUT_OF_ORDERNESS_MS: i64 = 2_000;

/// Tumbling event-time windows per auction: (count, max price), emitted into a checksum.
#[derive(Default)]
struct Tumbling {
    windows: BTreeMap<i64, FxHashMap<i64, (i64, i64)>>,
    max_ts: i64,
    fired: u64,
    checksum: i64,
}

impl Tumbling {
    fn add(&mut self, b: &Bid<'_>) {
        let start = b.date_time - b.date_time.rem_euclid(WINDOW_MS);
        let acc = self.windows.entry(start).or_default().entry(b.auction).or_insert((0, i64::MIN));
        acc.0 += 1;
        acc.1 = acc.1.max(b.price);
        self.max_ts = self.max_ts.max(b.date_time);
        self.advance(self.max_ts - OUT_OF_ORDERNESS_MS - 1);
    }

    fn advance(&mut self, watermark: i64) {
        while let Some((&start, _)) = self.windows.first_key_value() {
            if start + WINDOW_MS - 1 > watermark {
                break;
            }
            if let Some((_, keys)) = self.windows.pop_first() {
                for (auction, (n, max)) in keys {
                    self.fired += 1;
                    self.checksum = self.checksum.wrapping_add(auction ^ n ^ max ^ start);
                }
            }
        }
    }
}

/// Session windows per bidder (gap 10 s), merged on out-of-order input; (count), emitted into a checksum.
#[derive(Default)]
struct Sessions {
    /// Open sessions per bidder: (start, end exclusive, count), non-overlapping, few per key.
    open: FxHashMap<i64, Vec<(i64, i64, i64)>>,
    /// (end, bidder) candidates for firing; stale entries are skipped.
    timers: BinaryHeap<Reverse<(i64, i64)>>,
    max_ts: i64,
    fired: u64,
    checksum: i64,
}

impl Sessions {
    fn add(&mut self, b: &Bid<'_>) {
        let list = self.open.entry(b.bidder).or_default();
        let (mut start, mut end, mut n) = (b.date_time, b.date_time + WINDOW_MS, 1);
        list.retain(|&(s, e, c)| {
            let overlaps = s < end && start < e;
            if overlaps {
                start = start.min(s);
                end = end.max(e);
                n += c;
            }
            !overlaps
        });
        list.push((start, end, n));
        self.timers.push(Reverse((end, b.bidder)));
        self.max_ts = self.max_ts.max(b.date_time);
        self.advance(self.max_ts - OUT_OF_ORDERNESS_MS - 1);
    }

    fn advance(&mut self, watermark: i64) {
        while let Some(&Reverse((end, bidder))) = self.timers.peek() {
            if end - 1 > watermark {
                break;
            }
            self.timers.pop();
            let Some(list) = self.open.get_mut(&bidder) else { continue };
            if let Some(pos) = list.iter().position(|&(_, e, _)| e == end) {
                let (start, _, n) = list.swap_remove(pos);
                self.fired += 1;
                self.checksum = self.checksum.wrapping_add(bidder ^ n ^ start);
                if list.is_empty() {
                    self.open.remove(&bidder);
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(query), Some(path)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: eddy-bench-limit <q1|q2|count> <bids.csv>");
        return ExitCode::from(2);
    };
    let t = Instant::now();
    let mut checksum: f64 = 0.0;
    let mut bad = 0u64;
    let mut counts: FxHashMap<i64, (i64, i64)> = FxHashMap::default();
    let mut tumbling = Tumbling::default();
    let mut sessions = Sessions::default();
    let result = for_each_line(path, |line| {
        if query == "lines" {
            checksum += line.len() as f64;
            return;
        }
        let Some(b) = parse(line) else {
            bad += 1;
            return;
        };
        // Touch every field so the parse cannot be optimised away, as a sink would.
        let touch = (b.bidder ^ b.date_time) as usize + b.channel.len() + b.url.len() + b.extra.len();
        match query.as_str() {
            "q1" => checksum += b.price as f64 * 0.908 + touch as f64,
            "q2" => {
                if b.auction % 123 == 0 {
                    checksum += touch as f64;
                }
            }
            "window" => tumbling.add(&b),
            "session" => sessions.add(&b),
            _ => {
                let e = counts.entry(b.auction).or_default();
                e.0 += 1;
                e.1 += b.price;
            }
        }
    });
    let n = match result {
        Ok(n) => n,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // End of input: the final watermark fires everything still open.
    tumbling.advance(i64::MAX);
    sessions.advance(i64::MAX);
    let wall = t.elapsed().as_secs_f64();
    println!(
        "limit {query} n={n} wall_s={wall:.3} rec_per_s={:.0} (checksum {checksum:.0}, keys {}, windows {}, sessions {}, bad {bad})",
        n as f64 / wall,
        counts.len(),
        tumbling.fired,
        sessions.fired,
    );
    let _ = (tumbling.checksum, sessions.checksum);
    ExitCode::SUCCESS
}
