//! Workflows: what the command line runs, as library calls, written once for every kind of
//! data through the [`Modality`] seam. A Rust program does in a few lines what `contra`
//! does:
//!
//! ```
//! use contra::recipe::Recipe;
//! use contra::train::{TrainOptions, TrainedFile};
//! use contra::workflow::{Images, Loaded, Modality, evaluate, export_embeddings};
//!
//! # fn main() -> contra::Result<()> {
//! let out = std::env::temp_dir().join("contra-doc-example");
//! // Pretrain SimCLR on the bundled digits, as `contra pretrain --set train.epochs=2` does.
//! let recipe = Recipe::default_recipe().with_overrides(&[
//!     "train.epochs=2".into(),
//!     format!("train.out={:?}", out.display().to_string()),
//! ])?;
//! let splits = Images::load(&recipe)?;
//! let report = Images::pretrain(&recipe, &splits.train, &TrainOptions::default())?;
//! let device = contra::device::parse("cpu")?;
//! let trained = Loaded::<Images>::trained(report.model, &recipe, splits, &device)?;
//! println!("{}", evaluate::after_training(&trained)?.to_text());
//!
//! // The few-label table of the saved model: kNN, the probe and fine-tuning with 5 labels a
//! // class, over 2 draws of the labels.
//! let file = TrainedFile::read(&out.join("model.safetensors"))?;
//! let model = Loaded::<Images>::read(&file, &device, None)?;
//! let tune = evaluate::FinetuneSettings { steps: 10, ..Default::default() };
//! let table = evaluate::fewshot_table(&model, vec!["5".parse()?], 2, &tune, |_| {})?;
//! println!("{}", table.to_text());
//!
//! // Embed the test split to files, and search it.
//! let test = export_embeddings(&model, "test", &out)?;
//! let hits = contra::search::top_k(&test.select(&[0]), &test, 5, |_, r| r == 0, &device);
//! assert_eq!(hits[0].len(), 5);
//! # Ok(())
//! # }
//! ```

pub mod clip;
pub mod evaluate;
pub mod export;
pub mod loaded;
pub mod modality;
pub mod pretrain;
pub mod record;
pub mod text;

pub use clip::{ImageText, TrainedClip};
pub use export::export_embeddings;
pub use loaded::Loaded;
pub use modality::{ForModality, Images, Modality, Series, dispatch};
pub use pretrain::{pretrain, pretrain_series};
pub use record::{record_evaluation, record_split};
pub use text::{Text, TrainedText};
