//! Built-in operators, one file each, written against the same public API (`eddy_api`) as a user's.
//!
//! Adding one: a file here with a config struct and an [`eddy_api::OperatorBuilder`], plus one line
//! in [`register`].
use eddy_api::Registry;

pub mod aggregate;
pub mod filter;
pub mod flat_map;
pub mod join;
pub mod key_by;
pub mod map;
pub mod union;
pub mod watermark;
pub mod window;

/// Registers every built-in operator.
pub fn register(registry: &mut Registry) {
    registry
        .operator("map", map::plan)
        .operator("filter", filter::plan)
        .operator("flat_map", flat_map::plan)
        .operator("key_by", key_by::plan)
        .operator("union", union::plan)
        .operator("aggregate", aggregate::plan)
        .operator("window", window::plan)
        .operator("watermark", watermark::plan)
        .operator("window_join", join::window_join::plan)
        .operator("interval_join", join::interval_join::plan);
}
