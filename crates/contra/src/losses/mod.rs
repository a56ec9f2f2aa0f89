//! Contrastive losses, one per file, each with its formula and paper in its doc comment.

pub mod clip;
pub mod contextual;
pub mod contrastive_pair;
pub mod dcl;
pub mod hierarchical;
pub mod info_nce;
pub mod kernels;
pub mod mean_shifted;
pub mod mnrl;
pub mod nt_xent;
pub mod shifted_instance;
pub mod siglip;
pub mod supcon;
pub mod triplet;

pub use clip::ClipLoss;
pub use contextual::ContextualLoss;
pub use contrastive_pair::ContrastivePairLoss;
pub use dcl::DclLoss;
pub use hierarchical::HierarchicalLoss;
pub use info_nce::{InfoNceLoss, Negatives};
pub use mean_shifted::MeanShiftedLoss;
pub use mnrl::MnrlLoss;
pub use nt_xent::NtXentLoss;
pub use shifted_instance::ShiftedInstanceLoss;
pub use siglip::SigLipLoss;
pub use supcon::{SupConLoss, UNLABELLED};
pub use triplet::{Distance, MinedLoss, Miner, MinerKind, TripletLoss};
