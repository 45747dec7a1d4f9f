//! The practical limit on this machine: a hand-written, single-threaded loop that parses the bid CSV
//! and does the work of each benchmark query, with no framework in between. `bench/run.sh` compares
//! Eddy against it.
//!
//! Usage: `eddy-bench-limit <q1|q2|count> <bids.csv>`; prints `limit <query> n=<N> wall_s=<..> rec_per_s=<..>`.
use rustc_hash::FxHashMap;
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
    let wall = t.elapsed().as_secs_f64();
    println!(
        "limit {query} n={n} wall_s={wall:.3} rec_per_s={:.0} (checksum {checksum:.0}, keys {}, bad {bad})",
        n as f64 / wall,
        counts.len()
    );
    ExitCode::SUCCESS
}
