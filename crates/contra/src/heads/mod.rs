//! Projection heads: the small network between the encoder's features and the loss.

pub mod projection;
pub use projection::{ProjectionHead, ProjectionHeadSpec};
