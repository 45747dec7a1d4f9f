//! [`WatermarkStrategy`]: how watermarks are generated from the event time of records, where records
//! enter the job (a source's `event_time`) or mid-stream (an operator whose
//! [`OperatorBuilder::watermarks`](crate::OperatorBuilder::watermarks) returns one, like the built-in
//! `watermark`).
use std::time::Duration;

/// Bounded out-of-orderness watermarks, as Flink's `forBoundedOutOfOrderness`: the watermark trails the
/// largest timestamp seen by `max_out_of_orderness` plus 1 ms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatermarkStrategy {
    /// Position of the timestamp field (`timestamp_ms` or `int` milliseconds) in the records.
    pub field: usize,
    /// Bound on disorder: the watermark trails the largest timestamp seen by this much (plus 1 ms).
    pub max_out_of_orderness: Duration,
    /// A split silent for this long is marked idle and stops holding the watermark back.
    pub idle_timeout: Option<Duration>,
    /// How often watermarks are emitted; zero emits after every batch (punctuated).
    pub interval: Duration,
}

/// Default period of watermark emission, as in Flink.
pub const DEFAULT_WATERMARK_INTERVAL: Duration = Duration::from_millis(200);
