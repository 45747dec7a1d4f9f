//! State descriptors and time-to-live: how an operator names a piece of keyed state and how long its
//! values live.
//!
//! TTL follows Flink: a value's timestamp is the processing time (from
//! [`KeyedState::set_processing_time`](super::KeyedState::set_processing_time)) of its last write, or of its
//! last read or write with [`TtlUpdate::OnReadAndWrite`]; a value whose timestamp plus the TTL is at most
//! the current processing time is expired. Expired values are never returned: they are removed when
//! accessed and by the incremental sweep
//! ([`KeyedState::cleanup_expired`](super::KeyedState::cleanup_expired)). List elements and map entries
//! expire one by one; value, reducing and aggregating state as a whole.
use std::time::Duration;

/// Names a piece of keyed state and sets its options; passed to the `KeyedState` declaration methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDescriptor {
    /// The state's name, unique within the operator.
    pub name: String,
    /// How long values live; `None` keeps them until cleared.
    pub ttl: Option<StateTtl>,
}

impl StateDescriptor {
    /// A descriptor without TTL.
    pub fn new(name: impl Into<String>) -> Self {
        StateDescriptor { name: name.into(), ttl: None }
    }

    /// Sets the time-to-live of the state's values.
    pub fn with_ttl(mut self, ttl: StateTtl) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// The time-to-live of a state's values (processing time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateTtl {
    /// How long a value lives after its last update.
    pub ttl: Duration,
    /// Which accesses count as an update.
    pub update: TtlUpdate,
}

impl StateTtl {
    /// Values expire `ttl` after they were created or last written.
    pub fn new(ttl: Duration) -> Self {
        StateTtl { ttl, update: TtlUpdate::OnCreateAndWrite }
    }

    /// Sets which accesses restart the clock of a value.
    pub fn with_update(mut self, update: TtlUpdate) -> Self {
        self.update = update;
        self
    }

    /// The TTL in milliseconds, saturated to `i64::MAX`.
    pub(crate) fn millis(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Which accesses restart the TTL clock of a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TtlUpdate {
    /// Creating or writing a value (Flink's default).
    #[default]
    OnCreateAndWrite,
    /// Reading a value too.
    OnReadAndWrite,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_builders() {
        let d = StateDescriptor::new("seen")
            .with_ttl(StateTtl::new(Duration::from_secs(2)).with_update(TtlUpdate::OnReadAndWrite));
        assert_eq!(d.name, "seen");
        let ttl = d.ttl.unwrap_or_else(|| unreachable!());
        assert_eq!(ttl.millis(), 2_000);
        assert_eq!(ttl.update, TtlUpdate::OnReadAndWrite);
        assert_eq!(StateTtl::new(Duration::MAX).millis(), i64::MAX);
        assert_eq!(StateTtl::new(Duration::ZERO).update, TtlUpdate::OnCreateAndWrite);
    }
}
