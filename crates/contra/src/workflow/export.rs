//! `contra embed`: a split's embeddings as `.npy` files and a safetensors index for search.

use super::loaded::Loaded;
use super::modality::Modality;
use crate::data::Dataset;
use crate::embed::{EmbeddingIndex, write_index, write_npy_f32, write_npy_labels};
use crate::error::Result;
use crate::features::Features;
use std::collections::HashMap;
use std::path::Path;

/// Embed the split `split` (`train` or `test`) of the model's data and write
/// `embeddings.npy`, `labels.npy` (where labelled) and `embeddings.safetensors` (ids, labels,
/// and metadata naming the model, the split and how items became encoder input) into `out`.
pub fn export_embeddings<M: Modality>(l: &Loaded<M>, split: &str, out: &Path) -> Result<Features> {
    let data = l.split(split)?;
    let f = l.embed(data);
    write_npy_f32(&out.join("embeddings.npy"), &f.data, f.rows, f.dim)?;
    if let Some(labels) = data.labels() {
        write_npy_labels(&out.join("labels.npy"), labels)?;
    }
    std::fs::create_dir_all(out).map_err(|e| crate::error::Error::io(out, e))?;
    let model = l
        .path
        .as_deref()
        .map(|p| crate::embed::model_reference(p, out));
    let (input_key, input) = M::index_metadata(data, &l.prep);
    let mut metadata = HashMap::from([
        ("contra.split".to_string(), split.to_string()),
        (input_key, input),
    ]);
    if let Some(m) = model {
        metadata.insert(crate::embed::META_MODEL.to_string(), m);
    }
    // What each row is: an image's file, or a window's stream and first row.
    let items: Option<Vec<String>> = match (&l.splits.test_origins, split) {
        (Some(origins), "test") => Some(
            origins
                .iter()
                .map(|o| format!("{}:{}", o.stream, o.first_row))
                .collect(),
        ),
        _ => data.item_names().map(<[String]>::to_vec),
    };
    if let Some(items) = items {
        metadata.insert(
            crate::embed::META_ITEMS.to_string(),
            serde_json::to_string(&items).expect("serialisable"),
        );
    }
    write_index(
        &out.join("embeddings.safetensors"),
        &EmbeddingIndex {
            ids: (0..f.rows as i64).collect(),
            labels: data.labels().map(<[u32]>::to_vec),
            embeddings: f.clone(),
            metadata,
        },
    )?;
    Ok(f)
}
