//! `contra search`: the nearest items of an embedding index to one of its items or to an
//! image file.

use super::print;
use contra::features::Features;
use contra::train::TrainedFile;
use contra::workflow::modality::InputRecipe;
use contra::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// An index written by `contra embed` (embeddings.safetensors).
    #[arg(long)]
    index: PathBuf,
    /// Query with the item of the index that has this id (it is left out of the results).
    #[arg(long, conflicts_with_all = ["image", "text"], required_unless_present_any = ["image", "text"])]
    id: Option<i64>,
    /// Query with an image file (PNG or JPEG), embedded by the index's model (a CLIP model's
    /// image tower also queries its text index).
    #[arg(long, conflicts_with = "text")]
    image: Option<PathBuf>,
    /// Query a text index with a sentence, embedded by the index's model (a CLIP model's text
    /// tower also queries its image index).
    #[arg(long)]
    text: Option<String>,
    /// The model that embeds --image or --text (default: the one that wrote the index).
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// How many results.
    #[arg(long, short, default_value_t = 10)]
    k: usize,
    /// Device: cpu, cuda:N, tch-cpu or tch-cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Hit {
    rank: usize,
    id: i64,
    label: Option<u32>,
    cosine: f32,
    /// What the row is: the image's file, or a window's stream and first row.
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

pub fn run(a: Args) -> Result<()> {
    let index = contra::embed::read_index(&a.index)?;
    let device = contra::device::parse(&a.device)?;
    if a.k == 0 {
        return Err(Error::config("--k", "must be at least 1"));
    }
    let e = &index.embeddings;
    let (query, own_row, what) = match (a.id, &a.image) {
        (None, None) if a.text.is_some() => {
            let q = a.text.as_deref().expect("checked");
            let f = contra::workflow::text::embed_query(
                &index,
                &a.index,
                q,
                a.model.as_deref(),
                &device,
            )?;
            (f, None, format!("{q:?}"))
        }
        (Some(id), _) => {
            let row = index.ids.iter().position(|&i| i == id).ok_or_else(|| {
                Error::config(
                    "--id",
                    format!(
                        "{id} is not in {} (ids {}..={})",
                        a.index.display(),
                        index.ids.first().copied().unwrap_or(0),
                        index.ids.last().copied().unwrap_or(0)
                    ),
                )
            })?;
            let label = index
                .labels
                .as_ref()
                .map_or(String::new(), |l| format!(", label {}", l[row]));
            (e.select(&[row]), Some(row), format!("item {id}{label}"))
        }
        (None, Some(path)) => {
            let f = embed_image(&a, &index, path, &device)?;
            (f, None, path.display().to_string())
        }
        (None, None) => return Err(Error::config("--id", "give --id, --image or --text")),
    };
    let hits = contra::search::top_k(&query, e, a.k, |_, r| Some(r) == own_row, &device);
    let texts = contra::workflow::text::index_texts(&index);
    let items = index.items();
    let hits: Vec<Hit> = hits[0]
        .iter()
        .enumerate()
        .map(|(rank, h)| Hit {
            rank: rank + 1,
            id: index.ids[h.row],
            label: index.labels.as_ref().map(|l| l[h.row]),
            cosine: h.similarity,
            item: items.as_ref().and_then(|t| t.get(h.row).cloned()),
            text: texts.as_ref().and_then(|t| t.get(h.row).cloned()),
        })
        .collect();
    print(a.json, &hits, || {
        let mut s = format!("{} nearest of {} items to {what}:\n", hits.len(), e.rows);
        s += &format!(
            "{:>5}  {:>10}  {:>6}  {:>10}\n",
            "rank", "id", "label", "cosine"
        );
        for h in &hits {
            let label = h.label.map_or("-".to_string(), |l| l.to_string());
            s += &format!(
                "{:>5}  {:>10}  {:>6}  {:>10.4}",
                h.rank, h.id, label, h.cosine
            );
            if let Some(t) = h.item.as_ref().or(h.text.as_ref()) {
                s += &format!("  {t}");
            }
            s += "\n";
        }
        s
    });
    Ok(())
}

/// An image file as the index's model embeds its items.
fn embed_image(
    a: &Args,
    index: &contra::embed::EmbeddingIndex,
    path: &std::path::Path,
    device: &contra::Device,
) -> Result<Features> {
    let bad = |m: &str| Error::format(&a.index, m.to_string());
    let model_path = index.query_model(a.model.as_deref(), "--image")?;
    let file = TrainedFile::read(&model_path)?;
    if file.recipe.data.is_image_text() {
        // A CLIP model: its image tower answers for its image and text indexes alike.
        let f = contra::workflow::clip::embed_image_file(&file, path, device)?;
        return index.check_query(f, &model_path);
    }
    if index.metadata.get("contra.data").map(String::as_str) == Some("text") {
        return Err(bad(
            "this index holds text embeddings: query it with --text or --id",
        ));
    }
    if index.metadata.get("contra.data").map(String::as_str) == Some("series") {
        return Err(bad(
            "this index holds time series embeddings: query it with --id",
        ));
    }
    let input: InputRecipe = index
        .metadata
        .get(InputRecipe::META_KEY)
        .ok_or_else(|| bad("no contra.input metadata: write the index with contra embed"))
        .and_then(|t| {
            serde_json::from_str(t).map_err(|e| bad(&format!("bad contra.input: {e}")))
        })?;
    let model = file.model(input.channels, device)?;
    let item = input.read_image(path)?;
    use contra::methods::Method;
    let f = contra::eval::features::encode(
        model.encoder(),
        &item,
        input.normalize.as_ref(),
        input.input_size,
        1,
        device,
    );
    index.check_query(f, &model_path)
}
