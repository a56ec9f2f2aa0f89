//! `eval.json` in a run folder: every evaluation run on the run's model, one entry per
//! command, oldest first.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Add the result of `command` (as `contra` names it: `eval knn`, `eval fewshot`, ...) on
/// the model file `model` to `eval.json` in the model's folder, and return that file.
pub fn record_evaluation(
    model: &Path,
    command: &str,
    result: serde_json::Value,
) -> Result<PathBuf> {
    let dir = model
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let path = dir.join("eval.json");
    let mut entries: Vec<serde_json::Value> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Error::format(&path, format!("not a list of evaluations: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    entries.push(serde_json::json!({
        "command": command,
        "model": model.display().to_string(),
        "unix_time": unix_time,
        "result": result,
    }));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let text = serde_json::to_string_pretty(&entries).expect("JSON values serialise");
    crate::checkpoint::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// The file in a run folder that lists which items trained and which were held out.
pub const SPLIT_FILE: &str = "split.csv";

/// Write `split.csv` into `dir`: a `split,item` row for every named item (an image's file
/// relative to its folder), training items first, so that a run's held-out set can be
/// checked and reused; without a held-out split only training rows. Nothing is written
/// when the data do not name their items.
pub fn record_split<D: crate::data::Dataset>(
    dir: &Path,
    splits: &crate::data::Splits<D>,
) -> Result<Option<PathBuf>> {
    let (Some(train), Some(test)) = (splits.train.item_names(), splits.test.item_names()) else {
        return Ok(None);
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let path = dir.join(SPLIT_FILE);
    let write_err = |e: csv::Error| Error::format(&path, e.to_string());
    w.write_record(["split", "item"]).map_err(write_err)?;
    // With no held-out split (`data.train_fraction = 1`) every item is a training item.
    let mut parts = vec![("train", train)];
    if !splits.test_is_train {
        parts.push(("test", test));
    }
    for (split, names) in parts {
        for name in names {
            w.write_record([split, name.as_str()]).map_err(write_err)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::format(&path, e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    crate::checkpoint::write_atomic(&path, &bytes)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_accumulate_and_a_broken_file_is_named() {
        let dir = std::env::temp_dir().join(format!("contra-record-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let m = &dir.join("model.safetensors");
        record_evaluation(m, "eval knn", serde_json::json!({"a": 1})).unwrap();
        let path = record_evaluation(m, "eval retrieval", serde_json::json!([2])).unwrap();
        let v: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["command"], "eval knn");
        assert_eq!(v[1]["result"], serde_json::json!([2]));
        std::fs::write(&path, "{").unwrap();
        let e = record_evaluation(m, "eval knn", serde_json::json!(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("eval.json"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
