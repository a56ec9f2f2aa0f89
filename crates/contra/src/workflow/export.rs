//! `contra embed`: a split's embeddings as `.npy` files and a safetensors index for search.

use super::loaded::Loaded;
use super::modality::Modality;
use crate::data::Dataset;
use crate::embed::{EmbeddingIndex, read_index, write_index, write_npy_f32, write_npy_labels};
use crate::error::{Error, Result};
use crate::features::Features;
use std::collections::HashMap;
use std::path::Path;

/// Embed the split `split` (`train` or `test`) of the model's data and write
/// `embeddings.npy`, `labels.npy` (where labelled) and `embeddings.safetensors` (ids, labels,
/// and metadata naming the model, the split and how items became encoder input) into `out`.
///
/// Across processes each rank embeds its share of the items and writes it beside the
/// output; rank 0 then merges the parts into the same files one process writes (the other
/// ranks write nothing more and return no rows).
pub fn export_embeddings<M: Modality>(l: &Loaded<M>, split: &str, out: &Path) -> Result<Features> {
    let data = l.split(split)?;
    let f = match crate::dist::rank_and_size() {
        (_, 1) => l.embed(data),
        (rank, ranks) => {
            let rows: Vec<usize> = crate::dist::share(data.len(), rank, ranks).collect();
            let part = l.embed(&data.subset(&rows));
            match embed_sharded(part, rank, ranks, out)? {
                Some(all) => all,
                None => {
                    return Ok(Features {
                        data: Vec::new(),
                        rows: 0,
                        dim: 0,
                    });
                }
            }
        }
    };
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

/// The part file of rank `rank` of `ranks` in `out`.
fn part_path(out: &Path, rank: usize, ranks: usize) -> std::path::PathBuf {
    out.join(format!(".embeddings.part-{rank}-of-{ranks}.safetensors"))
}

/// Write this rank's rows as a part file; on rank 0, once every rank has written its part,
/// every part's rows in rank order (the part files removed). `None` on the other ranks.
fn embed_sharded(
    part: Features,
    rank: usize,
    ranks: usize,
    out: &Path,
) -> Result<Option<Features>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let index = EmbeddingIndex {
        ids: (0..part.rows as i64).collect(),
        labels: None,
        embeddings: part,
        metadata: HashMap::new(),
    };
    write_index(&part_path(out, rank, ranks), &index)?;
    crate::dist::barrier();
    if rank > 0 {
        return Ok(None);
    }
    let mut all = Features {
        data: Vec::new(),
        rows: 0,
        dim: index.embeddings.dim,
    };
    for r in 0..ranks {
        let path = part_path(out, r, ranks);
        if !path.is_file() {
            return Err(Error::format(
                &path,
                format!(
                    "rank {r}'s embeddings are not here: the output folder must be one that every rank shares"
                ),
            ));
        }
        let part = read_index(&path)?.embeddings;
        all.data.extend(part.data);
        all.rows += part.rows;
        all.dim = part.dim;
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(Some(all))
}
