//! The input gate: merges a task's bounded input channels into one ordered stream of events.
//!
//! Channels are polled round robin so no upstream starves the others. The gate owns the cross-channel
//! bookkeeping: a watermark is passed on only when the minimum over the active channels advances (ended
//! and idle channels do not hold it back), the task becomes idle when every live channel is idle, and
//! end-of-input is passed on only when every channel has ended.
//!
//! Checkpoint barriers are aligned here. In exactly-once mode a channel that delivered barrier `n` is
//! *held* (no longer polled) until every live channel has delivered it; then the gate hands on one
//! barrier and releases them all. Holding rather than buffering keeps alignment bounded: the held
//! channel's bounded queue fills and backpressure stops its upstream. At-least-once mode counts barriers
//! without holding anything. An ended channel counts as aligned.
use eddy_api::{Batch, CheckpointBarrier, StreamElement};
use futures_util::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc::Receiver;

/// What the gate hands to its task.
#[derive(Debug)]
pub enum GateEvent {
    /// A batch from some channel, with the input port that channel feeds.
    Data(usize, Batch),
    /// The minimum watermark over all channels advanced to this value.
    Watermark(i64),
    /// Every live channel is idle (`true`), or one became active again (`false`).
    Idle(bool),
    /// A channel closed without end-of-input: its upstream task died.
    Disconnected,
    /// Every live channel delivered this barrier (aligned in exactly-once mode).
    Barrier(CheckpointBarrier),
    /// Every channel has ended.
    EndOfInput,
}

struct InputChannel {
    rx: Receiver<StreamElement>,
    port: usize,
    watermark: i64,
    ended: bool,
    idle: bool,
    /// Delivered the barrier being aligned.
    barrier: bool,
}

/// Merged input of one task.
pub struct InputGate {
    channels: Vec<InputChannel>,
    next: usize,
    live: usize,
    watermark: i64,
    /// Whether the task is idle as a whole (every live channel idle).
    idle: bool,
    done: bool,
    /// Hold channels after a barrier until all delivered it (exactly-once).
    align: bool,
    /// The barrier being aligned, if any.
    aligning: Option<CheckpointBarrier>,
    /// Events produced together (a barrier completed by an end of input, say), handed on in order.
    ready: VecDeque<GateEvent>,
}

impl InputGate {
    /// A gate over the given channels, each with the input port it feeds; `align` holds channels
    /// during barrier alignment (exactly-once), otherwise barriers are only counted (at-least-once).
    pub fn new(receivers: Vec<(Receiver<StreamElement>, usize)>, align: bool) -> Self {
        let live = receivers.len();
        InputGate {
            channels: receivers
                .into_iter()
                .map(|(rx, port)| InputChannel {
                    rx,
                    port,
                    watermark: i64::MIN,
                    ended: false,
                    idle: false,
                    barrier: false,
                })
                .collect(),
            next: 0,
            live,
            watermark: i64::MIN,
            idle: false,
            done: false,
            align,
            aligning: None,
            ready: VecDeque::new(),
        }
    }

    /// Barrier `b` arrived on channel `i`.
    fn on_barrier(&mut self, i: usize, b: CheckpointBarrier) -> Option<GateEvent> {
        match self.aligning {
            Some(cur) if b.id < cur.id => return None, // of a checkpoint given up on: stale
            Some(cur) if b.id > cur.id => {
                // A newer barrier overtook an unfinished alignment (that checkpoint is lost anyway).
                self.channels.iter_mut().for_each(|c| c.barrier = false);
                self.aligning = Some(b);
            }
            Some(_) => {}
            None => self.aligning = Some(b),
        }
        self.channels[i].barrier = true;
        self.alignment_done()
    }

    /// Hands on the barrier once every live channel delivered it, releasing the held channels.
    fn alignment_done(&mut self) -> Option<GateEvent> {
        let b = self.aligning?;
        if self.channels.iter().any(|c| !c.ended && !c.barrier) {
            return None;
        }
        self.aligning = None;
        self.channels.iter_mut().for_each(|c| c.barrier = false);
        Some(GateEvent::Barrier(b))
    }

    /// Whether channel `c` is held for alignment.
    fn held(&self, c: usize) -> bool {
        self.align && self.channels[c].barrier
    }

    /// Number of input channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// True when the gate has no channel.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// The minimum watermark over active channels, if it advanced. With every live channel idle there
    /// is no minimum, and the watermark stays where it is.
    fn advance_watermark(&mut self) -> Option<i64> {
        let active = self.channels.iter().filter(|c| !c.ended && !c.idle);
        let min = match active.map(|c| c.watermark).min() {
            Some(m) => m,
            None if self.live == 0 => i64::MAX,
            None => return None,
        };
        (min > self.watermark).then(|| {
            self.watermark = min;
            min
        })
    }

    /// The idle status of the whole gate, when it changed.
    fn idle_change(&mut self) -> Option<bool> {
        let all_idle = self.live > 0 && self.channels.iter().all(|c| c.ended || c.idle);
        (all_idle != self.idle).then(|| {
            self.idle = all_idle;
            all_idle
        })
    }

    /// Handles one element of channel `i`; returns the event to hand on, if any.
    fn on_element(&mut self, i: usize, el: StreamElement) -> Option<GateEvent> {
        match el {
            StreamElement::Data(b) => Some(GateEvent::Data(self.channels[i].port, b)),
            StreamElement::Idle(idle) => {
                self.channels[i].idle = idle;
                // Leaving idleness must be announced before anything else; entering it may advance the
                // watermark of the channels that are still active.
                match self.idle_change() {
                    Some(false) => Some(GateEvent::Idle(false)),
                    Some(true) => Some(GateEvent::Idle(true)),
                    None if idle => self.advance_watermark().map(GateEvent::Watermark),
                    None => None,
                }
            }
            StreamElement::Watermark(w) => {
                let ch = &mut self.channels[i];
                ch.watermark = ch.watermark.max(w);
                self.advance_watermark().map(GateEvent::Watermark)
            }
            StreamElement::Barrier(b) => self.on_barrier(i, b),
            StreamElement::EndOfInput => {
                self.channels[i].ended = true;
                self.channels[i].barrier = false;
                self.live -= 1;
                // An ended channel no longer holds back an alignment in progress.
                if let Some(b) = self.alignment_done() {
                    self.ready.push_back(b);
                }
                if self.live == 0 {
                    self.done = true;
                    self.ready.push_back(GateEvent::EndOfInput);
                } else if let Some(w) = self.advance_watermark().filter(|&w| w < i64::MAX) {
                    self.ready.push_back(GateEvent::Watermark(w));
                }
                self.ready.pop_front()
            }
        }
    }
}

impl Stream for InputGate {
    type Item = GateEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<GateEvent>> {
        let this = &mut *self;
        if let Some(ev) = this.ready.pop_front() {
            return Poll::Ready(Some(ev));
        }
        if this.done || this.channels.is_empty() {
            return Poll::Ready(None);
        }
        let n = this.channels.len();
        let mut idle = 0;
        while idle < n {
            let i = this.next;
            this.next = (this.next + 1) % n;
            if this.channels[i].ended || this.held(i) {
                idle += 1;
                continue;
            }
            match this.channels[i].rx.poll_recv(cx) {
                Poll::Ready(Some(el)) => {
                    idle = 0;
                    if let Some(ev) = this.on_element(i, el) {
                        return Poll::Ready(Some(ev));
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Some(GateEvent::Disconnected));
                }
                Poll::Pending => idle += 1,
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::sync::mpsc::channel;

    #[actix_rt::test]
    async fn watermark_is_the_minimum_and_end_needs_every_channel() {
        let (a_tx, a_rx) = channel(8);
        let (b_tx, b_rx) = channel(8);
        let mut gate = InputGate::new(vec![(a_rx, 0), (b_rx, 1)], true);
        a_tx.send(StreamElement::Watermark(10)).await.unwrap();
        b_tx.send(StreamElement::Watermark(5)).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Watermark(5))));
        b_tx.send(StreamElement::Watermark(20)).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Watermark(10))));
        a_tx.send(StreamElement::EndOfInput).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Watermark(20))));
        b_tx.send(StreamElement::EndOfInput).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::EndOfInput)));
        assert!(gate.next().await.is_none());
    }

    #[actix_rt::test]
    async fn an_idle_channel_does_not_hold_the_watermark_back() {
        let (a_tx, a_rx) = channel(8);
        let (b_tx, b_rx) = channel(8);
        let mut gate = InputGate::new(vec![(a_rx, 0), (b_rx, 1)], true);
        a_tx.send(StreamElement::Watermark(10)).await.unwrap();
        b_tx.send(StreamElement::Idle(true)).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Watermark(10))));
        a_tx.send(StreamElement::Idle(true)).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Idle(true))));
        b_tx.send(StreamElement::Idle(false)).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Idle(false))));
        // b is active again with an older watermark: the output never goes backwards.
        b_tx.send(StreamElement::Watermark(5)).await.unwrap();
        b_tx.send(StreamElement::Watermark(30)).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Watermark(30))));
    }

    #[actix_rt::test]
    async fn a_dropped_upstream_is_reported() {
        let (a_tx, a_rx) = channel::<StreamElement>(8);
        let mut gate = InputGate::new(vec![(a_rx, 0)], true);
        drop(a_tx);
        assert!(matches!(gate.next().await, Some(GateEvent::Disconnected)));
    }

    fn barrier(id: u64) -> StreamElement {
        StreamElement::Barrier(CheckpointBarrier { id, savepoint: false })
    }

    #[actix_rt::test]
    async fn exactly_once_holds_a_channel_until_every_channel_delivered_the_barrier() {
        let (a_tx, a_rx) = channel(8);
        let (b_tx, b_rx) = channel(8);
        let mut gate = InputGate::new(vec![(a_rx, 0), (b_rx, 1)], true);
        a_tx.send(barrier(1)).await.unwrap();
        a_tx.send(StreamElement::Data(Batch::new(1))).await.unwrap(); // after the barrier: held
        b_tx.send(StreamElement::Data(Batch::new(1))).await.unwrap(); // before it: passes
        assert!(matches!(gate.next().await, Some(GateEvent::Data(1, _))));
        b_tx.send(barrier(1)).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Barrier(CheckpointBarrier { id: 1, .. }))));
        assert!(matches!(gate.next().await, Some(GateEvent::Data(0, _))), "released after alignment");
    }

    #[actix_rt::test]
    async fn at_least_once_counts_barriers_without_holding() {
        let (a_tx, a_rx) = channel(8);
        let (b_tx, b_rx) = channel(8);
        let mut gate = InputGate::new(vec![(a_rx, 0), (b_rx, 1)], false);
        a_tx.send(barrier(1)).await.unwrap();
        a_tx.send(StreamElement::Data(Batch::new(1))).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Data(0, _))), "not held");
        b_tx.send(barrier(1)).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Barrier(_))));
    }

    #[actix_rt::test]
    async fn an_ended_channel_completes_the_alignment() {
        let (a_tx, a_rx) = channel(8);
        let (b_tx, b_rx) = channel(8);
        let mut gate = InputGate::new(vec![(a_rx, 0), (b_rx, 1)], true);
        a_tx.send(barrier(3)).await.unwrap();
        b_tx.send(StreamElement::EndOfInput).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::Barrier(CheckpointBarrier { id: 3, .. }))));
        a_tx.send(StreamElement::EndOfInput).await.unwrap();
        assert!(matches!(gate.next().await, Some(GateEvent::EndOfInput)));
    }
}
