//! `contra pretrain`: train from a recipe, then evaluate beside the raw inputs.

use contra::Result;
use contra::recipe::Recipe;
use contra::train::TrainOptions;
use contra::workflow::{ForModality, Loaded, Modality, dispatch, evaluate};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe file (TOML). Without it, the built-in recipe: SimCLR on the bundled 8x8 digits.
    #[arg(long, short, conflicts_with = "data")]
    recipe: Option<PathBuf>,
    /// Your own data, no recipe needed: a folder of images (a sub-folder per class, or none)
    /// or a UCR/UEA set folder; the run says what it found and what it trains.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Set any recipe key, checked as in a file: `--set train.epochs=5 --set
    /// method.temperature=0.2` (a new `kind` or `source` starts from that kind's defaults).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Continue the run in the output folder from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Override `train.epochs`.
    #[arg(long)]
    epochs: Option<u64>,
    /// Override `train.batch_size`.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Override `train.device`: cpu, cuda:N, tch-cpu or tch-cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Override `train.out`, the folder for checkpoints, metrics and the model.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override `seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Override `data.path`.
    #[arg(long)]
    data_path: Option<PathBuf>,
    /// Override `data.train_limit` (use the first N training images).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Override `train.workers`, the augmentation threads.
    #[arg(long)]
    workers: Option<usize>,
    /// Override `train.checkpoint_every` (steps).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Skip the evaluation after training.
    #[arg(long)]
    no_eval: bool,
}

impl Args {
    /// The recipe with every override applied, in the order: flags, then `--set`.
    fn recipe(&self) -> Result<Recipe> {
        let recipe = match (&self.recipe, &self.data) {
            (Some(p), _) => Recipe::from_file(p)?,
            (None, Some(dir)) => {
                let (recipe, said) = Recipe::for_data(dir)?;
                eprintln!("{said}");
                recipe
            }
            (None, None) => Recipe::default_recipe(),
        };
        use toml::Value;
        let int = |v: u64| Value::Integer(v.min(i64::MAX as u64) as i64);
        let path = |p: &PathBuf| Value::String(p.display().to_string());
        let flags = [
            ("train.epochs", self.epochs.map(int)),
            ("train.batch_size", self.batch_size.map(|v| int(v as u64))),
            ("train.workers", self.workers.map(|v| int(v as u64))),
            ("train.device", self.device.clone().map(Value::String)),
            ("train.out", self.out.as_ref().map(path)),
            ("seed", self.seed.map(int)),
            ("data.path", self.data_path.as_ref().map(path)),
            ("data.train_limit", self.train_limit.map(|v| int(v as u64))),
            ("train.checkpoint_every", self.checkpoint_every.map(int)),
        ];
        let settings: Vec<(String, Value)> = flags
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
        recipe.with_settings(&settings)?.with_overrides(&self.sets)
    }
}

pub fn run(a: Args) -> Result<()> {
    let recipe = a.recipe()?;
    dispatch(
        &recipe,
        Pretrain {
            args: &a,
            recipe: &recipe,
        },
    )
}

struct Pretrain<'a> {
    args: &'a Args,
    recipe: &'a Recipe,
}

impl ForModality for Pretrain<'_> {
    type Output = Result<()>;

    fn run<M: Modality>(self) -> Result<()> {
        let (a, recipe) = (self.args, self.recipe);
        let splits = M::load(recipe)?;
        let out = recipe.out_dir();
        let (rank, ranks) = contra::dist::rank_and_size();
        if rank == 0 {
            let across = if ranks > 1 {
                format!(", {ranks} processes")
            } else {
                String::new()
            };
            eprintln!(
                "contra pretrain: {} ({}{across}) -> {}",
                recipe.name,
                M::describe(&splits.train),
                out.display()
            );
            if let Some(path) = contra::workflow::record_split(&out, &splits)? {
                eprintln!("the split's files: {}", path.display());
            }
        }
        let opts = TrainOptions {
            resume: a.resume,
            quiet: !contra::progress::enabled(),
        };
        let report = M::pretrain(recipe, &splits.train, &opts)?;
        // Across processes, rank 0 reports and evaluates alone; the others are done.
        let first = contra::dist::is_first();
        contra::dist::leave();
        if !first {
            return Ok(());
        }
        if report.steps == 0 {
            println!(
                "trained 0 steps: the model is kept as it starts (pretrained parts as shipped)"
            );
        } else {
            println!(
                "trained {} steps in {:.1} s: final loss {:.4}, {:.0} views/s, data wait {:.1}% of the time",
                report.steps,
                report.seconds,
                report.final_loss,
                report.views_per_second,
                100.0 * report.data_wait_fraction
            );
            if ranks > 1 {
                println!(
                    "{ranks} processes: {:.1} kB sent per step by rank 0",
                    report.bytes_sent_per_step / 1e3
                );
            }
        }
        println!("model: {}", out.join("model.safetensors").display());
        if a.no_eval {
            return Ok(());
        }
        let device = contra::device::parse(&recipe.train.device)?;
        let trained = Loaded::<M>::trained(report.model, recipe, splits, &device)?;
        let evaluation = evaluate::after_training(&trained)?;
        let text = evaluation.to_text();
        if !text.is_empty() {
            println!("\nevaluation on {}:\n{text}", trained.test_description());
        }
        let own = M::own_evaluation(&trained)?;
        if !own.is_empty() {
            println!("{own}");
        }
        Ok(())
    }
}
