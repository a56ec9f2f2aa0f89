//! contra: contrastive representation learning on burn.
//!
//! The pieces follow the data flow: [`data`] -> [`augment`] -> [`encoders`] -> [`heads`] ->
//! [`losses`] -> [`methods`] -> [`train`] -> [`eval`] and [`embed`]. [`recipe`] ties them
//! together from a TOML file, and [`device`] selects where tensors live.

pub mod augment;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod embed;
pub mod encoders;
pub mod error;
pub mod eval;
pub mod heads;
pub mod image;
pub mod losses;
pub mod methods;
pub mod optim;
pub mod plot;
pub mod recipe;
pub mod rng;
pub mod run_report;
pub mod runtime;
pub mod search;
pub mod tensor_util;
pub mod train;

pub use burn::prelude::Device;
pub use error::{Error, Result};
