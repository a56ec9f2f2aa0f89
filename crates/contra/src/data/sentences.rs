//! Text data sets: sentences, pairs (anchor, positive) with an optional hard negative, and
//! labelled sentences, from JSONL (one object a line), CSV or TSV with a header (the `csv`
//! crate), or plain text (one sentence a line, for SimCSE).
//!
//! Columns are found by name: the text is the first of `anchor`, `text`, `sentence`,
//! `sentence1`, `query`; the positive `positive`, `sentence2`, `pos`; the negative
//! `negative`, `neg`; the label `label`. A recipe may name them instead.

use super::Dataset;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Sentences, each with an optional positive, hard negative and class.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextDataset {
    pub texts: Vec<String>,
    pub positives: Option<Vec<String>>,
    pub negatives: Option<Vec<String>>,
    pub labels: Option<Vec<u32>>,
    pub class_names: Vec<String>,
}

impl Dataset for TextDataset {
    fn len(&self) -> usize {
        self.texts.len()
    }
    fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn subset(&self, rows: &[usize]) -> Self {
        let pick = |v: &Vec<String>| rows.iter().map(|&r| v[r].clone()).collect();
        Self {
            texts: pick(&self.texts),
            positives: self.positives.as_ref().map(pick),
            negatives: self.negatives.as_ref().map(pick),
            labels: self
                .labels
                .as_ref()
                .map(|l| rows.iter().map(|&r| l[r]).collect()),
            class_names: self.class_names.clone(),
        }
    }
}

impl TextDataset {
    /// The first `n` items.
    pub fn take(&self, n: usize) -> Self {
        let rows: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&rows)
    }

    /// Every text of item `i` (its anchor, positive and negative).
    pub fn item_texts(&self, i: usize) -> impl Iterator<Item = &str> {
        std::iter::once(self.texts[i].as_str())
            .chain(self.positives.as_ref().map(|p| p[i].as_str()))
            .chain(self.negatives.as_ref().map(|n| n[i].as_str()))
    }
}

/// Which column holds what (found by name when left out).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TextColumns {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

const TEXT_NAMES: &[&str] = &["anchor", "text", "sentence", "sentence1", "query"];
const POSITIVE_NAMES: &[&str] = &["positive", "sentence2", "pos"];
const NEGATIVE_NAMES: &[&str] = &["negative", "neg"];
const LABEL_NAMES: &[&str] = &["label"];

/// The columns of a file's header that hold text, positive, negative and label.
struct Picked {
    text: String,
    positive: Option<String>,
    negative: Option<String>,
    label: Option<String>,
}

fn pick(header: &[String], columns: &TextColumns, path: &Path) -> Result<Picked> {
    let find = |named: &Option<String>, names: &[&str], what: &str| -> Result<Option<String>> {
        match named {
            Some(n) if header.iter().any(|h| h == n) => Ok(Some(n.clone())),
            Some(n) => Err(Error::format(
                path,
                format!(
                    "no column `{n}` (the recipe's {what} column); the file has {}",
                    header.join(", ")
                ),
            )),
            None => Ok(names
                .iter()
                .find(|n| header.iter().any(|h| h == *n))
                .map(|n| n.to_string())),
        }
    };
    let text = find(&columns.text, TEXT_NAMES, "text")?.ok_or_else(|| {
        Error::format(
            path,
            format!(
                "no text column: expected one of {} (or name it in data.columns.text); the file has {}",
                TEXT_NAMES.join(", "),
                header.join(", ")
            ),
        )
    })?;
    Ok(Picked {
        text,
        positive: find(&columns.positive, POSITIVE_NAMES, "positive")?,
        negative: find(&columns.negative, NEGATIVE_NAMES, "negative")?,
        label: find(&columns.label, LABEL_NAMES, "label")?,
    })
}

/// Rows of a file as (line, column -> value).
pub type Rows = Vec<(usize, BTreeMap<String, String>)>;

fn utf8(bytes: &[u8], path: &Path, line: usize) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        Error::format(
            path,
            format!(
                "line {line}: not UTF-8 (byte {} of the line)",
                e.utf8_error().valid_up_to() + 1
            ),
        )
    })
}

fn read_jsonl(bytes: &[u8], path: &Path) -> Result<(Vec<String>, Rows)> {
    let mut header: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let line = utf8(line, path, n)?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| Error::format(path, format!("line {n}: not JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| Error::format(path, format!("line {n}: expected a JSON object")))?;
        let mut row = BTreeMap::new();
        for (k, v) in obj {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(x) => x.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => {
                    return Err(Error::format(
                        path,
                        format!("line {n}: `{k}` is not a string or a number"),
                    ));
                }
            };
            if !header.contains(k) {
                header.push(k.clone());
            }
            row.insert(k.clone(), s);
        }
        rows.push((n, row));
    }
    Ok((header, rows))
}

fn read_delimited(bytes: &[u8], delimiter: u8, path: &Path) -> Result<(Vec<String>, Rows)> {
    let bytes = super::delimited::strip_bom(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .quoting(delimiter == b',')
        .from_reader(bytes);
    let bad = |e: csv::Error| super::delimited::error(path, e);
    let header: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let row = header
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_string))
            .collect();
        rows.push((line, row));
    }
    Ok((header, rows))
}

fn read_lines(bytes: &[u8], path: &Path) -> Result<(Vec<String>, Rows)> {
    let mut rows = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let text = utf8(line, path, i + 1)?;
        let text = text.strip_suffix('\r').unwrap_or(&text);
        if text.trim().is_empty() {
            continue;
        }
        rows.push((
            i + 1,
            BTreeMap::from([("text".to_string(), text.to_string())]),
        ));
    }
    Ok((vec!["text".into()], rows))
}

/// The rows of a `.jsonl`, `.csv`, `.tsv` or `.txt` file (a `.txt` line is column `text`):
/// its columns, and each row's line and values by column.
pub fn read_table(path: &Path) -> Result<(Vec<String>, Rows)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (header, rows) = match ext.as_str() {
        "jsonl" | "ndjson" | "json" => read_jsonl(&bytes, path)?,
        "csv" => read_delimited(&bytes, b',', path)?,
        "tsv" => read_delimited(&bytes, b'\t', path)?,
        "txt" | "text" => read_lines(&bytes, path)?,
        other => {
            return Err(Error::format(
                path,
                format!("unknown kind `.{other}`; expected .jsonl, .csv, .tsv or .txt"),
            ));
        }
    };
    if rows.is_empty() {
        return Err(Error::format(path, "no items: the file is empty"));
    }
    Ok((header, rows))
}

/// The values of column `name` in every row; a row without one is an error naming its line.
pub fn column(rows: &Rows, name: &str, path: &Path) -> Result<Vec<String>> {
    rows.iter()
        .map(|(line, row)| {
            row.get(name)
                .cloned()
                .ok_or_else(|| Error::format(path, format!("line {line}: no value for `{name}`")))
        })
        .collect()
}

/// Read a text data set. `classes` maps label values to class indices: empty for a training
/// file (it is filled, classes in sorted order), the training file's for a test file (a label
/// not seen in training is an error).
pub fn read_text_file(
    path: &Path,
    columns: &TextColumns,
    classes: &mut Vec<String>,
) -> Result<TextDataset> {
    let (header, rows) = read_table(path)?;
    let picked = pick(&header, columns, path)?;
    let column = |name: &str| column(&rows, name, path);
    let labels = match &picked.label {
        None => None,
        Some(name) => {
            let values = column(name)?;
            let fill = classes.is_empty();
            if fill {
                let mut distinct: Vec<String> = values.clone();
                distinct.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => a.cmp(b),
                });
                distinct.dedup();
                *classes = distinct;
            }
            let index: BTreeMap<&str, u32> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as u32))
                .collect();
            let mut out = Vec::with_capacity(values.len());
            for ((line, _), v) in rows.iter().zip(&values) {
                out.push(*index.get(v.as_str()).ok_or_else(|| {
                    Error::format(
                        path,
                        format!("line {line}: label `{v}` is not one of the training labels"),
                    )
                })?);
            }
            Some(out)
        }
    };
    Ok(TextDataset {
        texts: column(&picked.text)?,
        positives: picked.positive.as_deref().map(column).transpose()?,
        negatives: picked.negative.as_deref().map(column).transpose()?,
        labels,
        class_names: classes.clone(),
    })
}

/// `source = "text"`: files of sentences, pairs or labelled sentences.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TextSpec {
    /// The training file (required): `.jsonl`, `.csv`, `.tsv` or `.txt`.
    pub path: PathBuf,
    /// A test file of the same kind (default: the training file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_path: Option<PathBuf>,
    pub columns: TextColumns,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
}

impl TextSpec {
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::config(
                "data.path",
                "source `text` needs a file (.jsonl, .csv, .tsv or .txt)",
            ));
        }
        Ok(())
    }

    /// The training and test splits.
    pub fn load(&self) -> Result<super::Splits<TextDataset>> {
        self.validate()?;
        let mut classes = Vec::new();
        let mut train = read_text_file(&self.path, &self.columns, &mut classes)?;
        let mut test = match &self.test_path {
            Some(p) => read_text_file(p, &self.columns, &mut classes)?,
            None => train.clone(),
        };
        if let Some(n) = self.train_limit {
            train = train.take(n);
        }
        if let Some(n) = self.test_limit {
            test = test.take(n);
        }
        train.class_names = classes.clone();
        test.class_names = classes;
        Ok(super::Splits::new(train, test))
    }
}
