//! Contrastive losses, one per file.

pub mod nt_xent;
pub use nt_xent::NtXentLoss;
