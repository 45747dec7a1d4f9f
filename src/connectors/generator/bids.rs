//! Bid records, with value distributions loosely after `shared/bench/gen_bids.py` (Nexmark-like).
use super::rng::Rng;
use eddy_api::schema::{DataType, Field, Schema};
use eddy_api::value::Datum;
use eddy_api::Batch;

const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// A tenth of the bids arrive up to this late (so a 2 s bounded out-of-orderness is never exceeded).
pub(crate) const MAX_DELAY_MS: u64 = 2000;
/// Default `date_time` of record 0, as in gen_bids.py.
pub(crate) const BASE_MS: i64 = 1_700_000_000_000;

/// `{ auction, bidder, price: int, channel, url: string, date_time: timestamp_ms, extra: string }`.
pub(crate) fn schema() -> Schema {
    Schema::new(vec![
        Field::new("auction", DataType::Int),
        Field::new("bidder", DataType::Int),
        Field::new("price", DataType::Int),
        Field::new("channel", DataType::String),
        Field::new("url", DataType::String),
        Field::new("date_time", DataType::Timestamp),
        Field::new("extra", DataType::String),
    ])
}

/// The string pools records draw from, built once (from the seed) so records allocate nothing.
#[derive(Debug)]
pub(crate) struct Pools {
    urls: Vec<String>,
    extras: Vec<String>,
    channels: Vec<String>,
}

fn rand_str(r: &mut Rng, lo: u64, hi: u64) -> String {
    let n = lo + r.below(hi - lo + 1);
    (0..n).map(|_| char::from(ALPHA[r.below(ALPHA.len() as u64) as usize])).collect()
}

impl Pools {
    pub fn new(seed: u64) -> Pools {
        // Index `u64::MAX` is never a record, so the pool stream is separate from all record streams.
        let mut r = Rng::for_record(seed, u64::MAX);
        let urls = (0..1024)
            .map(|k| {
                let (a, b, c) = (rand_str(&mut r, 3, 6), rand_str(&mut r, 3, 6), rand_str(&mut r, 3, 6));
                format!("https://www.nexmark.com/{a}/{b}/{c}/item.htm?query=1&channel_id={k}")
            })
            .collect();
        let extras = (0..4096).map(|_| rand_str(&mut r, 16, 40)).collect();
        let channels = (0..1000).map(|k| format!("channel-{k}")).collect();
        Pools { urls, extras, channels }
    }

    /// Appends bid `i`.
    #[inline]
    pub fn push_bid(&self, out: &mut Batch, seed: u64, start_ms: i64, i: u64) {
        let mut r = Rng::for_record(seed, i);
        // Auctions and persons "created so far" grow with the index (person:auction:bid = 1:3:46).
        let n_auct = 1000 + 3 * i / 46;
        let auction = if r.unit() < 0.5 { (n_auct - 1) / 100 * 100 } else { n_auct - 1 - r.below(100) };
        let n_pers = 1000 + i / 46;
        let bidder = if r.unit() < 0.25 { (n_pers - 1) / 100 * 100 + 1 } else { n_pers - 1 - r.below(1000) };
        // Log-uniform 100 .. 1_000_000.
        let price = (100.0 * (r.unit() * 4.0 * std::f64::consts::LN_10).exp()) as i64;
        let c = r.unit();
        let (channel, url) = if c < 0.9 {
            let ci = ((c * 4.4444) as usize).min(3);
            (CHANNELS[ci], self.urls[ci].as_str())
        } else {
            let ci = r.below(1000) as usize;
            (self.channels[ci].as_str(), self.urls[ci].as_str())
        };
        let mut ts = start_ms.wrapping_add(i as i64);
        if r.unit() < 0.1 {
            ts -= r.below(MAX_DELAY_MS + 1) as i64;
        }
        let extra = &self.extras[r.below(self.extras.len() as u64) as usize];
        out.push_int(auction as i64);
        out.push_int(bidder as i64);
        out.push_int(price);
        out.push_str(channel);
        out.push_str(url);
        out.push(Datum::Timestamp(ts));
        out.push_str(extra);
    }
}
