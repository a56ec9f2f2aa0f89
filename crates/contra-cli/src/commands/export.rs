//! `contra export`: a text model as a sentence-transformers folder.

use contra::Result;
use contra::train::TrainedFile;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A text run's model.safetensors.
    #[arg(long, short)]
    model: PathBuf,
    /// The folder to write (config.json, model.safetensors, tokenizer.json, modules.json,
    /// 1_Pooling, sentence_bert_config.json).
    #[arg(long, short)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let device = contra::device::parse("cpu")?;
    let model = contra::workflow::text::read_text_model(&TrainedFile::read(&a.model)?, &device)?;
    contra::encoders::sentence::write_folder(
        model.encoder(),
        &model.meta,
        &model.tokenizer,
        &a.out,
    )?;
    println!(
        "wrote {} in the sentence-transformers layout",
        a.out.display()
    );
    Ok(())
}
