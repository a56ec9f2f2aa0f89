//! Workflows: what the command line runs, as library calls. Each takes a recipe (or a model
//! file) and the data, and does the whole job: a Rust program does in a few lines what
//! `contra` does.

pub mod pretrain;
pub use pretrain::{pretrain, pretrain_series};
