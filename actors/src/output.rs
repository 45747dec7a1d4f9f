//! The writing side of an edge: partitions a task's output over the downstream channels.
//!
//! Small outputs are gathered per target until a batch is full or the buffer timeout flushes it (the
//! latency/throughput trade of Flink's network buffers); large batches on forward and rebalance edges
//! are handed on whole, without a copy. Sends never wait: an element that does not fit a full channel
//! is parked in [`Parked`], and the task drains that before it takes more input, which is what turns a
//! slow consumer into backpressure.
use crate::graph::Partitioning;
use eddy_api::key::{key_group, subtask_for_key_group};
use eddy_api::{Batch, EddyError, Result, StreamElement};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

/// Elements that did not fit their channel, in send order.
#[derive(Default)]
pub struct Parked(pub Vec<(Sender<StreamElement>, StreamElement)>);

impl Parked {
    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One output edge of a task.
pub struct OutputWriter {
    partitioning: Partitioning,
    senders: Vec<Sender<StreamElement>>,
    builders: Vec<Batch>,
    /// Targets with parked elements: later elements must queue behind them to keep order.
    blocked: Vec<bool>,
    batch_size: usize,
    max_parallelism: usize,
    next: usize,
    /// Scratch: target of each row of the batch being partitioned.
    targets: Vec<u32>,
    /// Which output of the chain feeds this edge: `None` main, `Some(i)` side output `i`.
    side: Option<usize>,
}

impl OutputWriter {
    /// A writer over `senders` (one per downstream subtask; a single one for forward edges).
    pub fn new(
        partitioning: Partitioning,
        senders: Vec<Sender<StreamElement>>,
        width: usize,
        batch_size: usize,
        max_parallelism: usize,
    ) -> Self {
        let n = senders.len();
        OutputWriter {
            partitioning,
            senders,
            builders: (0..n).map(|_| Batch::new(width)).collect(),
            blocked: vec![false; n],
            batch_size: batch_size.max(1),
            max_parallelism,
            next: 0,
            targets: Vec::new(),
            side: None,
        }
    }

    /// Feeds this edge from side output `side` of the chain's last node instead of its main output.
    pub fn on_side(mut self, side: Option<usize>) -> Self {
        self.side = side;
        self
    }

    /// The chain output this edge is fed from.
    pub fn side(&self) -> Option<usize> {
        self.side
    }

    /// Routes a batch; may take its rows (leaving it empty).
    pub fn emit(&mut self, batch: &mut Batch, parked: &mut Parked) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        match &self.partitioning {
            Partitioning::Forward => self.emit_to(0, batch, parked),
            Partitioning::Rebalance => {
                let t = self.next;
                self.next = (self.next + 1) % self.senders.len();
                self.emit_to(t, batch, parked)
            }
            Partitioning::Hash(keys) => {
                let n = self.senders.len();
                if n == 1 {
                    return self.emit_to(0, batch, parked);
                }
                let max_p = self.max_parallelism;
                self.targets.clear();
                self.targets.extend(
                    batch
                        .rows()
                        .map(|row| subtask_for_key_group(key_group(keys.key_hash(row), max_p), max_p, n) as u32),
                );
                for (i, &t) in self.targets.iter().enumerate() {
                    self.builders[t as usize].push_row_from(batch.row(i));
                }
                self.send_full(parked)
            }
            Partitioning::Broadcast => {
                for t in 0..self.senders.len() {
                    for row in batch.rows() {
                        self.builders[t].push_row_from(row);
                    }
                }
                self.send_full(parked)
            }
        }
    }

    fn emit_to(&mut self, t: usize, batch: &mut Batch, parked: &mut Parked) -> Result<()> {
        if self.builders[t].is_empty() && batch.len() * 2 >= self.batch_size {
            let whole = batch.take();
            return self.send(t, StreamElement::Data(whole), parked);
        }
        for row in batch.rows() {
            self.builders[t].push_row_from(row);
        }
        batch.clear();
        if self.builders[t].len() >= self.batch_size {
            let full = self.builders[t].take();
            self.send(t, StreamElement::Data(full), parked)?;
        }
        Ok(())
    }

    fn send_full(&mut self, parked: &mut Parked) -> Result<()> {
        for t in 0..self.builders.len() {
            if self.builders[t].len() >= self.batch_size {
                let full = self.builders[t].take();
                self.send(t, StreamElement::Data(full), parked)?;
            }
        }
        Ok(())
    }

    /// Sends every partly filled batch.
    pub fn flush(&mut self, parked: &mut Parked) -> Result<()> {
        for t in 0..self.builders.len() {
            if !self.builders[t].is_empty() {
                let b = self.builders[t].take();
                self.send(t, StreamElement::Data(b), parked)?;
            }
        }
        Ok(())
    }

    /// Flushes, then sends a control element (watermark, barrier, end) to every target, in order.
    pub fn broadcast(&mut self, make: impl Fn() -> StreamElement, parked: &mut Parked) -> Result<()> {
        self.flush(parked)?;
        for t in 0..self.senders.len() {
            self.send(t, make(), parked)?;
        }
        Ok(())
    }

    /// Called once everything parked has been delivered.
    pub fn unblock(&mut self) {
        self.blocked.iter_mut().for_each(|b| *b = false);
    }

    fn send(&mut self, t: usize, el: StreamElement, parked: &mut Parked) -> Result<()> {
        if self.blocked[t] {
            parked.0.push((self.senders[t].clone(), el));
            return Ok(());
        }
        match self.senders[t].try_send(el) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(el)) => {
                self.blocked[t] = true;
                parked.0.push((self.senders[t].clone(), el));
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(EddyError::internal("downstream task is gone")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::key::FieldKeys;
    use eddy_api::Datum;
    use std::sync::Arc;
    use tokio::sync::mpsc::channel;

    fn batch(keys: &[i64]) -> Batch {
        let mut b = Batch::new(1);
        for &k in keys {
            b.push(Datum::Int(k));
        }
        b
    }

    #[test]
    fn hash_sends_equal_keys_to_the_same_target_and_parks_when_full() {
        let (tx0, mut rx0) = channel(1);
        let (tx1, mut rx1) = channel(1);
        let mut w = OutputWriter::new(Partitioning::Hash(Arc::new(FieldKeys(vec![0]))), vec![tx0, tx1], 1, 2, 128);
        let mut parked = Parked::default();
        let keys: Vec<i64> = (0..40).map(|i| i % 5).collect();
        w.emit(&mut batch(&keys), &mut parked).unwrap();
        w.broadcast(|| StreamElement::EndOfInput, &mut parked).unwrap();
        // Capacity 1 per channel: most of it is parked, in order, behind the first element of each target.
        let mut seen = [Vec::new(), Vec::new()];
        let mut drain = |t: usize, el: StreamElement| {
            if let StreamElement::Data(b) = el {
                seen[t].extend(b.rows().map(|r| r.int(0).unwrap()));
            }
        };
        while let Ok(el) = rx0.try_recv() {
            drain(0, el);
        }
        while let Ok(el) = rx1.try_recv() {
            drain(1, el);
        }
        for (tx, el) in parked.0 {
            let t = if tx.same_channel(&w.senders[0]) { 0 } else { 1 };
            drain(t, el);
        }
        assert_eq!(seen[0].len() + seen[1].len(), 40);
        for k in 0..5 {
            assert!(!(seen[0].contains(&k) && seen[1].contains(&k)), "key {k} on both targets");
        }
    }
}
