//! contra: contrastive representation learning on burn.
//!
//! The pieces are layered along the data flow, each using only those below it: core types
//! ([`error`], [`rng`], [`seeding`], [`features`], [`device`], [`dist`], [`checkpoint`]) -> [`data`] ->
//! [`augment`] -> [`encoders`] -> [`heads`] -> [`losses`] -> [`methods`] -> [`optim`] ->
//! [`recipe`] (one TOML file naming every component) -> [`train`] -> [`eval`] -> [`embed`] ->
//! [`search`] -> [`run_report`] -> [`workflow`] (what the command line runs).

pub mod augment;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod dist;
pub mod embed;
pub mod encoders;
pub mod error;
pub mod eval;
pub mod features;
pub mod heads;
pub mod image;
pub mod losses;
pub mod methods;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod recipe;
pub mod rng;
pub mod run_report;
pub mod runtime;
pub mod search;
pub mod seeding;
pub mod tensor_util;
pub mod train;
pub mod workflow;

pub use burn::prelude::Device;
pub use error::{Error, Result};
