//! One file per command. Each parses its own arguments into library calls.

pub mod embed;
pub mod eval;
pub mod export;
pub mod info;
pub mod pretrain;
pub mod report;
pub mod search;

use contra::Result;
use contra::train::TrainedFile;
use contra::workflow::{Loaded, Modality};
use std::path::PathBuf;

/// The model a command reads.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// A run's model.safetensors (or checkpoint.safetensors).
    #[arg(long, short)]
    pub model: PathBuf,
    /// Device: cpu, cuda:N, tch-cpu or tch-cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Override the data folder stored in the model's recipe.
    #[arg(long)]
    pub data_path: Option<PathBuf>,
}

impl ModelArgs {
    /// The model file.
    pub fn file(&self) -> Result<TrainedFile> {
        TrainedFile::read(&self.model)
    }

    /// The model with the data its recipe names.
    pub fn load<M: Modality>(&self, file: &TrainedFile) -> Result<Loaded<M>> {
        let device = contra::device::parse(&self.device)?;
        Loaded::read(file, &device, self.data_path.as_deref())
    }
}

/// Print `value` as JSON (with `--json`), or `text`.
pub fn print(json: bool, value: &impl serde::Serialize, text: impl FnOnce() -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("results serialise")
        );
    } else {
        print!("{}", text());
    }
}
