//! `contra embed`: a split's embeddings as files, and an index for `contra search`.

use super::ModelArgs;
use contra::Result;
use contra::train::TrainedFile;
use contra::workflow::{ForModality, Loaded, Modality, dispatch, export_embeddings};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Which split: train or test.
    #[arg(long, default_value = "test")]
    split: String,
    /// A text or CLIP model: embed this file's texts instead of a split (`.txt`, one a line, or the
    /// text column of `.jsonl`, `.csv`, `.tsv`); the index keeps the texts for search.
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Output folder: embeddings.npy, labels.npy and embeddings.safetensors.
    #[arg(long, short)]
    out: PathBuf,
}

impl Args {
    /// Whether it embeds a text file (one process) rather than a model's data split.
    pub fn embeds_text_file(&self) -> bool {
        self.texts.is_some()
    }
}

pub fn run(a: Args) -> Result<()> {
    if let Some(texts) = &a.texts {
        let device = contra::device::parse(&a.model.device)?;
        let f = contra::workflow::text::embed_text_file(&a.model.model, texts, &a.out, &device)?;
        println!(
            "wrote {} embeddings of dimension {} to {}",
            f.rows,
            f.dim,
            a.out.display()
        );
        return Ok(());
    }
    let file = a.model.file()?;
    dispatch(&file.recipe.clone(), Embed { a: &a, file: &file })
}

struct Embed<'a> {
    a: &'a Args,
    file: &'a TrainedFile,
}

impl ForModality for Embed<'_> {
    type Output = Result<()>;

    fn run<M: Modality>(self) -> Result<()> {
        let l: Loaded<M> = self.a.model.load(self.file)?;
        let f = export_embeddings(&l, &self.a.split, &self.a.out)?;
        if !contra::dist::is_first() {
            return Ok(()); // rank 0 wrote the files
        }
        println!(
            "wrote {} embeddings of dimension {} to {}",
            f.rows,
            f.dim,
            self.a.out.display()
        );
        Ok(())
    }
}
