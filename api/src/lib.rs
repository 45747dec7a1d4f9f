//! The public API of Eddy: what an operator, source or sink author depends on.
//!
//! Records are rows with a [`Schema`]; they travel in [`Batch`]es (flat rows over one string arena, so a
//! batch holds thousands of records in a handful of allocations). Operators implement [`Operator`],
//! sources [`Source`], sinks [`Sink`]; each kind is registered by name in a [`Registry`] through a typed
//! config struct, which is how the YAML `type:` and `config:` of a node reach the code.
//!
//! Nothing in this crate knows about actix, storage or YAML: it is the contract between the runtime and
//! the code that plugs into it.
#![deny(missing_docs)]

pub mod batch;
pub mod config;
pub mod diagnostic;
pub mod element;
pub mod error;
pub mod key;
pub mod operator;
pub mod registry;
pub mod schema;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod state;
pub mod testing;
pub mod time;
pub mod value;
pub mod watermark;

pub use batch::{Batch, Row};
pub use config::{ConfigValue, Span, Spanned};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use element::{CheckpointBarrier, StreamElement};
pub use error::{EddyError, Result};
pub use key::{KeyGroupRange, KeySelector};
pub use operator::{Context, OpenContext, Operator, OperatorBuilder, TaskInfo};
pub use registry::{PlanContext, Registry};
pub use schema::{DataType, Field, Schema, SchemaRef};
pub use sink::{OutputFiles, Sink, SinkBuilder};
pub use source::{Source, SourceBuilder, SourcePoll};
pub use state::{HeapBackend, StateBackend};
pub use value::{Datum, OwnedDatum};
pub use watermark::WatermarkStrategy;
