//! Heartbeats: the coordinator pings every worker thread (arbiter) and declares one **stuck** when it
//! has not answered within `heartbeat_timeout` (user code in an endless loop, a blocking call that never
//! returns). Its tasks are failed and restarted on a fresh thread that takes its place; the stuck thread
//! is abandoned (a thread cannot be killed) and not waited for when the job ends.
//!
//! A task that waits on backpressure still answers: it is the thread that is pinged, not the task.
use super::Coordinator;
use actix::prelude::*;
use actix_rt::Arbiter;
use std::time::{Duration, Instant};
use tracing::error;

/// A worker thread answered ping `seq`.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Pong {
    arbiter: usize,
    seq: u64,
}

/// Heartbeat bookkeeping per worker thread.
#[derive(Default)]
pub(super) struct Heartbeats {
    /// Per arbiter: the ping in flight and when it was sent.
    outstanding: Vec<Option<(u64, Instant)>>,
    seq: u64,
    /// Threads started to replace stuck ones (stopped when the job ends).
    pub(super) spares: Vec<Arbiter>,
}

impl Coordinator {
    pub(super) fn start_heartbeats(&mut self, ctx: &mut Context<Self>) {
        let timeout = self.graph.supervision.heartbeat_timeout;
        if timeout.is_zero() {
            return;
        }
        self.heartbeats.outstanding = vec![None; self.arbiters.len()];
        let every = (timeout / 4).max(Duration::from_millis(20));
        ctx.run_interval(every, move |act, ctx| act.heartbeat(ctx, timeout));
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>, timeout: Duration) {
        if self.done.is_none() {
            return;
        }
        let me = ctx.address();
        for k in 0..self.arbiters.len() {
            match self.heartbeats.outstanding[k] {
                Some((_, sent)) if sent.elapsed() >= timeout => self.arbiter_stuck(ctx, k, timeout),
                Some(_) => {}
                None => {
                    self.heartbeats.seq += 1;
                    let seq = self.heartbeats.seq;
                    let me = me.clone();
                    self.heartbeats.outstanding[k] = Some((seq, Instant::now()));
                    self.arbiters[k].spawn(async move { me.do_send(Pong { arbiter: k, seq }) });
                }
            }
        }
    }

    /// Replaces a stuck thread and fails the tasks it runs (one failure per region they belong to).
    fn arbiter_stuck(&mut self, ctx: &mut Context<Self>, k: usize, timeout: Duration) {
        error!(thread = k, ?timeout, "a worker thread stopped answering heartbeats: failing its tasks");
        let spare = Arbiter::new();
        self.arbiters[k] = spare.handle();
        self.heartbeats.spares.push(spare);
        self.heartbeats.outstanding[k] = None;
        if let Some(stuck) = &self.stuck_threads {
            stuck.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(k);
        }
        let n = self.arbiters.len();
        let victims: Vec<usize> = (0..self.tasks.len()).filter(|&t| t % n == k).collect();
        for t in victims {
            // A failure restarts the task's region (or the whole job), taking every task of it: the
            // next victim of a region already restarting is skipped.
            if self.done.is_none() || self.tasks[t].is_none() {
                continue;
            }
            let node = self.graph.vertices[self.slots[t].id.vertex].display_name();
            let message = format!("its thread has not answered heartbeats for {timeout:?} (stuck in a blocking call?)");
            self.task_failed(ctx, t, node, message);
        }
    }
}

impl Handler<Pong> for Coordinator {
    type Result = ();

    fn handle(&mut self, pong: Pong, _: &mut Context<Self>) {
        if let Some(slot) = self.heartbeats.outstanding.get_mut(pong.arbiter) {
            if slot.is_some_and(|(seq, _)| seq == pong.seq) {
                *slot = None;
            }
        }
    }
}
