//! `contra report RUN`: the run's recipe, training curves, evaluation tables and embedding
//! maps in one page (report.html and report.md) that opens offline.

use contra::data::Dataset;
use contra::eval::report::Protocols;
use contra::eval::{fewshot, map};
use contra::features::Features;
use contra::plot::{self, chart};
use contra::recipe::Recipe;
use contra::run_report::{self, Block};
use contra::train::TrainedFile;
use contra::workflow::evaluate::{self, Evaluation};
use contra::workflow::{ForModality, Loaded, Modality, dispatch};
use contra::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The run's folder (recipe.toml, metrics.jsonl, model.safetensors).
    run: PathBuf,
    /// Output folder (default: RUN/report).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Test items drawn (with seed 0) for the embedding maps; 0 leaves the maps out.
    #[arg(long, default_value_t = 2000)]
    map_points: usize,
    /// Device for the embeddings: cpu, cuda:N, tch-cpu or tch-cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Override the data folder stored in the model's recipe.
    #[arg(long)]
    data_path: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| a.run.join("report"));
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let recipe_path = a.run.join("recipe.toml");
    let recipe_text =
        std::fs::read_to_string(&recipe_path).map_err(|e| Error::io(&recipe_path, e))?;
    let recipe = Recipe::from_stored(&recipe_text, &recipe_path)?;
    let curves = run_report::read_curves(&a.run.join("metrics.jsonl"))?;
    let mut blocks = vec![Block::Paragraph(format!(
        "{} with a {} encoder on {}: {} epochs of batch {}, {} steps logged, final loss {}{}.",
        recipe.method.name(),
        recipe.encoder.name(),
        recipe.data.source(),
        recipe.train.epochs,
        recipe.train.batch_size,
        curves.loss.len(),
        curves
            .loss
            .last()
            .map_or("-".into(), |l| format!("{:.4}", l.1)),
        curves
            .images_per_second
            .map_or(String::new(), |r| format!(", {r:.0} views/s"))
    ))];
    let panels = run_report::curve_panels(&curves);
    let width = 420 * panels.len();
    plot::save(&out.join("curves"), width, 320, |s| {
        chart::draw_panels(s, &panels, width as f64, 320.0)
    })?;
    blocks.push(Block::Heading("Training".into()));
    blocks.push(Block::Image {
        file: "curves.png".into(),
        caption: "Training curves (also curves.svg)".into(),
    });
    let model_path = a.run.join("model.safetensors");
    if model_path.is_file() {
        let file = TrainedFile::read(&model_path)?;
        let device = contra::device::parse(&a.device)?;
        dispatch(
            &recipe,
            Evaluate {
                a: &a,
                file: &file,
                device: &device,
                out: &out,
                blocks: &mut blocks,
            },
        )?;
    }
    blocks.push(Block::Heading("Recipe".into()));
    blocks.push(Block::Code(recipe_text));
    run_report::write_pages(&out, &format!("contra run: {}", recipe.name), &blocks)?;
    println!("wrote {}", out.join("report.html").display());
    Ok(())
}

/// The evaluation, few-label table and maps of the run's model.
struct Evaluate<'a> {
    a: &'a Args,
    file: &'a TrainedFile,
    device: &'a contra::Device,
    out: &'a Path,
    blocks: &'a mut Vec<Block>,
}

impl ForModality for Evaluate<'_> {
    type Output = Result<()>;

    fn run<M: Modality>(self) -> Result<()> {
        let (a, blocks) = (self.a, self.blocks);
        let l: Loaded<M> = Loaded::read(self.file, self.device, a.data_path.as_deref())?;
        eprintln!("embedding the data with {} ...", self.file.path.display());
        // The test embeddings, where the evaluation computed them (the maps draw from them).
        let mut test_embeddings: Option<Features> = None;
        let evaluation = if l.recipe.data.default_normal_classes().is_some() {
            evaluate::after_training(&l)?
        } else if l.splits.test.labels().is_some() && l.splits.train.labels().is_some() {
            let which = Protocols {
                knn: true,
                linear: false,
                svm: false,
                few_label: false,
            };
            let (learned, raw) = l.embeddings();
            let rows = evaluate::compare_embeddings(&l, &learned, &raw, which)?;
            test_embeddings = Some(learned.test);
            Evaluation::Accuracy {
                rows,
                raw: M::raw_name().into(),
            }
        } else {
            Evaluation::Nothing
        };
        match &evaluation {
            Evaluation::Anomaly(r) => {
                blocks.push(Block::Heading("Anomaly detection".into()));
                blocks.push(Block::Code(r.table.clone()));
            }
            Evaluation::Accuracy { rows, raw } => {
                blocks.push(Block::Heading("Evaluation".into()));
                blocks.push(Block::Table {
                    header: vec!["protocol".into(), "learned".into(), raw.clone()],
                    rows: rows
                        .iter()
                        .map(|r| {
                            vec![
                                r.protocol.clone(),
                                format!("{:.4}", r.learned.0),
                                format!("{:.4}", r.raw.0),
                            ]
                        })
                        .collect(),
                });
            }
            Evaluation::Nothing => {}
        }
        let few = a.run.join("fewshot.json");
        if few.is_file() {
            let text = std::fs::read_to_string(&few).map_err(|e| Error::io(&few, e))?;
            let table: fewshot::Table = serde_json::from_str(&text)
                .map_err(|e| Error::format(&few, format!("not a few-label table: {e}")))?;
            let (caption, header, rows) = table.rows(|t| format!("{t} *"));
            blocks.push(Block::Heading("Few labels".into()));
            blocks.push(Block::Paragraph(format!(
                "{caption}; * marks the best of a row."
            )));
            blocks.push(Block::Table { header, rows });
        }
        if a.map_points > 0 {
            maps(&l, test_embeddings.as_ref(), a.map_points, self.out, blocks)?;
        }
        Ok(())
    }
}

/// PCA and t-SNE maps of up to `points` test embeddings (`test`, where already computed),
/// coloured by label.
fn maps<M: Modality>(
    l: &Loaded<M>,
    test_embeddings: Option<&Features>,
    points: usize,
    out: &Path,
    blocks: &mut Vec<Block>,
) -> Result<()> {
    let test = &l.splits.test;
    let mut rows: Vec<usize> = (0..test.len()).collect();
    contra::rng::Rng::new(0).shuffle(&mut rows);
    rows.truncate(points);
    rows.sort_unstable();
    let sample = test.subset(&rows);
    let f: Features = match test_embeddings {
        Some(t) => t.select(&rows),
        None => l.embed(&sample),
    };
    blocks.push(Block::Heading("Embedding maps".into()));
    let names: Vec<String> = test
        .class_names()
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i} {n}"))
        .collect();
    eprintln!("mapping {} test embeddings (PCA, t-SNE) ...", f.rows);
    for (name, title, m) in [
        ("map-pca", "PCA", map::pca(&f, 2)),
        (
            "map-tsne",
            "t-SNE",
            map::tsne(&f, &map::TsneConfig::default()),
        ),
    ] {
        let points: Vec<(f64, f64)> = (0..m.rows)
            .map(|i| (m.row(i)[0] as f64, m.row(i)[1] as f64))
            .collect();
        let title = format!("{title} of {} test embeddings", m.rows);
        plot::save(&out.join(name), 760, 560, |s| {
            chart::draw_scatter(s, &title, &points, sample.labels(), &names, 760.0, 560.0)
        })?;
        blocks.push(Block::Image {
            file: format!("{name}.png"),
            caption: format!("{title}, coloured by label (also {name}.svg)"),
        });
    }
    Ok(())
}
