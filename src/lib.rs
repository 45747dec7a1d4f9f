//! Eddy: stateful stream processing on actix.
//!
//! This crate is the `eddy` binary's library: the YAML job model ([`config`]), SQL expressions
//! ([`expr`]), the built-in operators ([`operators`]) and connectors ([`connectors`]). Custom operators
//! plug in through the `eddy-api` crate, re-exported here as [`api`].

pub use eddy_api as api;

pub mod config;
pub mod connectors;
pub mod expr;
