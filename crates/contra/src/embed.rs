//! Export of embeddings: NumPy `.npy` files (float32 matrices, int64 labels) that any tool
//! reads, and one safetensors file that holds the embeddings with their item ids and labels
//! (the index `contra search` reads).

use crate::checkpoint::write_atomic;
use crate::error::{Error, Result};
use crate::eval::Features;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Embeddings with the ids of their items (row numbers in the data split) and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingIndex {
    pub embeddings: Features,
    pub ids: Vec<i64>,
    pub labels: Option<Vec<u32>>,
    /// Where the embeddings came from (`contra.model`, `contra.split`, `contra.data`).
    pub metadata: HashMap<String, String>,
}

impl EmbeddingIndex {
    /// The model file that embeds queries of this index: `model` if given, else the one that
    /// wrote the index (`what` names the query flag in the error).
    pub fn query_model(&self, model: Option<&Path>, what: &str) -> Result<std::path::PathBuf> {
        match (model, self.metadata.get(META_MODEL)) {
            (Some(m), _) => Ok(m.to_path_buf()),
            (None, Some(m)) => Ok(std::path::PathBuf::from(m)),
            (None, None) => Err(Error::config(
                "--model",
                format!("name the model that embeds {what}"),
            )),
        }
    }

    /// A query embedded by `model`, if it has the index's dimension.
    pub fn check_query(&self, query: Features, model: &Path) -> Result<Features> {
        if query.dim != self.embeddings.dim {
            return Err(Error::format(
                model,
                format!(
                    "embeds to dimension {}, the index holds dimension {}",
                    query.dim, self.embeddings.dim
                ),
            ));
        }
        Ok(query)
    }
}

/// Write an index as safetensors: `embeddings` (F32, rows x dim), `ids` (I64), `labels` (I64,
/// when known), and the metadata.
pub fn write_index(path: &Path, index: &EmbeddingIndex) -> Result<()> {
    let e = &index.embeddings;
    assert_eq!(index.ids.len(), e.rows);
    let f32_bytes: Vec<u8> = e.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let id_bytes: Vec<u8> = index.ids.iter().flat_map(|v| v.to_le_bytes()).collect();
    let label_bytes: Option<Vec<u8>> = index.labels.as_ref().map(|l| {
        assert_eq!(l.len(), e.rows);
        l.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect()
    });
    fn view(dtype: Dtype, shape: Vec<usize>, bytes: &[u8]) -> TensorView<'_> {
        TensorView::new(dtype, shape, bytes).expect("consistent tensor view")
    }
    let mut views = vec![
        (
            "embeddings".to_string(),
            view(Dtype::F32, vec![e.rows, e.dim], &f32_bytes),
        ),
        ("ids".to_string(), view(Dtype::I64, vec![e.rows], &id_bytes)),
    ];
    if let Some(b) = &label_bytes {
        views.push(("labels".to_string(), view(Dtype::I64, vec![e.rows], b)));
    }
    let mut meta = index.metadata.clone();
    meta.insert("contra.kind".into(), "embeddings".into());
    let out = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::format(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &crate::checkpoint::sorted_header(out))
}

/// Read an index written by [`write_index`]; anything else is an error naming the file and
/// what is missing or wrong.
pub fn read_index(path: &Path) -> Result<EmbeddingIndex> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::format(path, m);
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let tensor = |name: &str, dtype: Dtype| {
        let t = st.tensor(name).map_err(|_| {
            bad(format!(
                "no `{name}` tensor: not an embedding index (write one with `contra embed`)"
            ))
        })?;
        if t.dtype() != dtype {
            return Err(bad(format!(
                "tensor `{name}` is {:?}; expected {dtype:?}",
                t.dtype()
            )));
        }
        Ok(t)
    };
    let e = tensor("embeddings", Dtype::F32)?;
    let [rows, dim] = e.shape()[..] else {
        return Err(bad(format!(
            "`embeddings` has shape {:?}; expected rows x dimension",
            e.shape()
        )));
    };
    let ints = |name: &str| -> Result<Vec<i64>> {
        let t = tensor(name, Dtype::I64)?;
        if t.shape() != [rows] {
            return Err(bad(format!(
                "`{name}` has shape {:?}; expected [{rows}], one per embedding",
                t.shape()
            )));
        }
        Ok(t.data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect())
    };
    let labels = match st.tensor("labels") {
        Ok(_) => Some(
            ints("labels")?
                .into_iter()
                .map(|v| {
                    u32::try_from(v).map_err(|_| bad(format!("label {v} is not a class number")))
                })
                .collect::<Result<Vec<u32>>>()?,
        ),
        Err(_) => None,
    };
    Ok(EmbeddingIndex {
        embeddings: Features {
            data: e
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            rows,
            dim,
        },
        ids: ints("ids")?,
        labels,
        metadata: {
            let mut m = meta.metadata().clone().unwrap_or_default();
            // The model is named relative to the index's folder: both move together.
            if let Some(model) = m.get_mut(META_MODEL)
                && Path::new(model.as_str()).is_relative()
            {
                let dir = path.parent().unwrap_or(Path::new("."));
                *model = dir.join(model.as_str()).display().to_string();
            }
            m
        },
    })
}

/// Metadata key of an index: what each row is (a file, a stream and first row), as a JSON
/// list.
pub const META_ITEMS: &str = "contra.items";

impl EmbeddingIndex {
    /// What each row is, where the index says.
    pub fn items(&self) -> Option<Vec<String>> {
        self.metadata
            .get(META_ITEMS)
            .and_then(|t| serde_json::from_str(t).ok())
    }
}

/// Metadata key of an index: the model that wrote it, relative to the index's folder where
/// a relative path exists (so that a run folder and its indexes can move together).
pub const META_MODEL: &str = "contra.model";

/// How an index in `index_dir` names `model`: the path from `index_dir` to it, or the
/// absolute path when none exists (another drive).
pub fn model_reference(model: &Path, index_dir: &Path) -> String {
    let (Ok(model), Ok(dir)) = (
        std::fs::canonicalize(model),
        std::fs::canonicalize(index_dir),
    ) else {
        return model.display().to_string();
    };
    let (m, d): (Vec<_>, Vec<_>) = (model.components().collect(), dir.components().collect());
    let common = m.iter().zip(&d).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return model.display().to_string();
    }
    let mut rel = std::path::PathBuf::new();
    for _ in common..d.len() {
        rel.push("..");
    }
    for c in &m[common..] {
        rel.push(c);
    }
    rel.display().to_string()
}

fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// Write a row-major `f32` matrix of `rows x cols` as `.npy`.
pub fn write_npy_f32(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    assert_eq!(data.len(), rows * cols);
    let mut out = npy_header("<f4", &[rows, cols]);
    data.iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    write_atomic(path, &out)
}

/// Write a vector of labels as `.npy` (int64).
pub fn write_npy_labels(path: &Path, labels: &[u32]) -> Result<()> {
    let mut out = npy_header("<i8", &[labels.len()]);
    labels
        .iter()
        .for_each(|&v| out.extend_from_slice(&(v as i64).to_le_bytes()));
    write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_foreign_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("contra-index-{}", std::process::id()));
        let p = dir.join("e.safetensors");
        let index = EmbeddingIndex {
            embeddings: Features {
                data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                rows: 3,
                dim: 2,
            },
            ids: vec![10, 11, 12],
            labels: Some(vec![0, 2, 1]),
            metadata: HashMap::from([("contra.split".to_string(), "test".to_string())]),
        };
        write_index(&p, &index).unwrap();
        let back = read_index(&p).unwrap();
        assert_eq!(back.embeddings, index.embeddings);
        assert_eq!((back.ids, back.labels), (index.ids, index.labels));
        assert_eq!(back.metadata["contra.split"], "test");
        // A model file is not an index.
        let q = dir.join("model.safetensors");
        crate::checkpoint::write_safetensors(&q, &Default::default(), HashMap::new()).unwrap();
        let e = read_index(&q).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors") && e.contains("no `embeddings` tensor"),
            "{e}"
        );
        std::fs::write(&q, b"garbage").unwrap();
        assert!(
            read_index(&q)
                .unwrap_err()
                .to_string()
                .contains("not a valid safetensors")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn npy_layout_is_valid() {
        let dir = std::env::temp_dir().join(format!("contra-npy-{}", std::process::id()));
        let p = dir.join("x.npy");
        write_npy_f32(&p, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (2, 3)") && header.contains("<f4"));
        assert_eq!(b.len(), 10 + hlen + 24);
        assert_eq!(
            f32::from_le_bytes(b[10 + hlen + 20..].try_into().unwrap()),
            6.0
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
