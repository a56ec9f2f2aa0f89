//! Time series data sets: the UCR/UEA `.ts` format as aeon and sktime write it, and the UCR
//! archive's `.tsv` format. Every series keeps its own length (unequal lengths are allowed
//! where the file says so); missing values (`?` or `NaN`) are `f32::NAN`. Errors name the
//! file, the line and the field.

use crate::error::{Error, Result};
use std::path::Path;

/// Labelled or unlabelled multichannel series.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDataset {
    pub channels: usize,
    /// Each series as `channels x length` values, channel after channel.
    pub values: Vec<Vec<f32>>,
    pub lengths: Vec<usize>,
    /// Class of each series: an index into `class_names`.
    pub labels: Option<Vec<u32>>,
    pub class_names: Vec<String>,
}

impl SeriesDataset {
    /// The longest series.
    pub fn max_len(&self) -> usize {
        self.lengths.iter().copied().max().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Channel `c` of series `i`.
    pub fn channel(&self, i: usize, c: usize) -> &[f32] {
        let n = self.lengths[i];
        &self.values[i][c * n..(c + 1) * n]
    }

    /// The series `rows`, in that order.
    pub fn subset(&self, rows: &[usize]) -> SeriesDataset {
        SeriesDataset {
            channels: self.channels,
            values: rows.iter().map(|&i| self.values[i].clone()).collect(),
            lengths: rows.iter().map(|&i| self.lengths[i]).collect(),
            labels: self
                .labels
                .as_ref()
                .map(|l| rows.iter().map(|&i| l[i]).collect()),
            class_names: self.class_names.clone(),
        }
    }

    /// Series `i` padded with NaN to `len` steps (at least its own length), channel after
    /// channel.
    pub fn padded(&self, i: usize, len: usize) -> Vec<f32> {
        let n = self.lengths[i];
        let mut values = vec![f32::NAN; self.channels * len];
        for c in 0..self.channels {
            values[c * len..c * len + n].copy_from_slice(self.channel(i, c));
        }
        values
    }

    /// Express the labels in `names`' order (a test file read beside its training file);
    /// a class `names` lacks is an error naming `path`.
    pub fn relabel(&mut self, names: &[String], path: &Path) -> Result<()> {
        if let Some(labels) = &mut self.labels {
            let map: Vec<u32> = self
                .class_names
                .iter()
                .map(|n| {
                    names
                        .iter()
                        .position(|m| m == n)
                        .map(|p| p as u32)
                        .ok_or_else(|| {
                            Error::format(
                                path,
                                format!("class `{n}` is not among the training classes {names:?}"),
                            )
                        })
                })
                .collect::<Result<_>>()?;
            labels.iter_mut().for_each(|l| *l = map[*l as usize]);
        }
        self.class_names = names.to_vec();
        Ok(())
    }
}

fn parse_bool(path: &Path, line: usize, tag: &str, v: Option<&str>) -> Result<bool> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        other => Err(Error::format(
            path,
            format!("line {line}: {tag} must be true or false, not {other:?}"),
        )),
    }
}

fn parse_value(path: &Path, line: usize, what: &dyn Fn() -> String, s: &str) -> Result<f32> {
    let t = s.trim();
    if t == "?" || t.eq_ignore_ascii_case("nan") {
        return Ok(f32::NAN);
    }
    match t.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(Error::format(
            path,
            format!("line {line}, {}: `{t}` is not a number", what()),
        )),
    }
}

/// Read a `.ts` file: `#` comments, `@` header tags (case-insensitive), then `@data` and one
/// series per line, channels separated by `:`, values by `,`, the class label last when
/// `@classLabel true ...` lists the classes.
pub fn read_ts(path: &Path) -> Result<SeriesDataset> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |line: usize, m: String| Error::format(path, format!("line {line}: {m}"));
    let mut class_names: Option<Vec<String>> = None;
    let mut dimensions: Option<usize> = None;
    let mut equal_length = None;
    let mut series_length: Option<usize> = None;
    let mut missing_allowed = true;
    let mut in_data = false;
    let mut out = SeriesDataset {
        channels: 0,
        values: Vec::new(),
        lengths: Vec::new(),
        labels: None,
        class_names: Vec::new(),
    };
    let mut labels = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !in_data {
            if !line.starts_with('@') {
                return Err(bad(
                    n,
                    format!(
                        "expected a header tag (@...) or @data, found `{}`",
                        short(line)
                    ),
                ));
            }
            let mut words = line.split_whitespace();
            let tag = words.next().unwrap_or("").to_ascii_lowercase();
            match tag.as_str() {
                "@data" => in_data = true,
                "@timestamps" => {
                    if parse_bool(path, n, "@timeStamps", words.next())? {
                        return Err(bad(
                            n,
                            "series with time stamps are not supported; write values only".into(),
                        ));
                    }
                }
                "@dimensions" | "@dimension" => {
                    let v = words
                        .next()
                        .and_then(|w| w.parse::<usize>().ok())
                        .filter(|&d| d > 0);
                    dimensions = Some(v.ok_or_else(|| {
                        bad(n, "@dimensions must be a positive whole number".into())
                    })?);
                }
                "@equallength" => {
                    equal_length = Some(parse_bool(path, n, "@equalLength", words.next())?)
                }
                "@serieslength" => {
                    let v = words
                        .next()
                        .and_then(|w| w.parse::<usize>().ok())
                        .filter(|&d| d > 0);
                    series_length = Some(v.ok_or_else(|| {
                        bad(n, "@seriesLength must be a positive whole number".into())
                    })?);
                }
                "@classlabel" => {
                    if parse_bool(path, n, "@classLabel", words.next())? {
                        let names: Vec<String> = words.map(String::from).collect();
                        if names.is_empty() {
                            return Err(bad(n, "@classLabel true must list the classes".into()));
                        }
                        class_names = Some(names);
                    }
                }
                "@targetlabel" => {
                    if parse_bool(path, n, "@targetLabel", words.next())? {
                        return Err(bad(
                            n,
                            "regression targets (@targetLabel true) are not supported".into(),
                        ));
                    }
                }
                "@missing" => missing_allowed = parse_bool(path, n, "@missing", words.next())?,
                // Informational tags.
                "@problemname" | "@univariate" => {}
                other => return Err(bad(n, format!("unknown header tag `{other}`"))),
            }
            continue;
        }
        let mut fields: Vec<&str> = line.split(':').collect();
        if let Some(names) = &class_names {
            let label = fields.pop().unwrap_or("").trim();
            if fields.is_empty() {
                return Err(bad(
                    n,
                    "a series and its class label separated by `:` expected".into(),
                ));
            }
            let idx = names.iter().position(|c| c == label).ok_or_else(|| {
                bad(
                    n,
                    format!(
                        "class label `{}` is not one of @classLabel {names:?}",
                        short(label)
                    ),
                )
            })?;
            labels.push(idx as u32);
        }
        let channels = fields.len();
        let expected = dimensions.unwrap_or(if out.values.is_empty() {
            channels
        } else {
            out.channels
        });
        if channels != expected {
            return Err(bad(
                n,
                format!(
                    "{channels} dimensions, expected {expected} ({})",
                    if dimensions.is_some() {
                        "@dimensions"
                    } else {
                        "as the first series"
                    }
                ),
            ));
        }
        out.channels = channels;
        let mut values = Vec::new();
        let mut length = None;
        for (c, f) in fields.iter().enumerate() {
            let before = values.len();
            for (j, v) in f.split(',').enumerate() {
                let what = || format!("dimension {}, value {}", c + 1, j + 1);
                values.push(parse_value(path, n, &what, v)?);
            }
            if !missing_allowed && values[before..].iter().any(|v| v.is_nan()) {
                let j = values[before..].iter().position(|v| v.is_nan()).unwrap();
                return Err(bad(
                    n,
                    format!(
                        "dimension {}, value {}: a missing value, and the header says @missing false",
                        c + 1,
                        j + 1
                    ),
                ));
            }
            let len = values.len() - before;
            match length {
                None => length = Some(len),
                Some(l) if l != len => {
                    return Err(bad(
                        n,
                        format!("dimension {} has {len} values, dimension 1 has {l}", c + 1),
                    ));
                }
                _ => {}
            }
        }
        let len = length.unwrap_or(0);
        if equal_length == Some(true) {
            let want = series_length
                .or(out.lengths.first().copied())
                .unwrap_or(len);
            if len != want {
                return Err(bad(
                    n,
                    format!("series of length {len}; @equalLength true and the length is {want}"),
                ));
            }
        }
        out.values.push(values);
        out.lengths.push(len);
    }
    if !in_data {
        return Err(Error::format(
            path,
            "no @data line: not a .ts file, or an empty one",
        ));
    }
    if out.values.is_empty() {
        return Err(Error::format(path, "no series after @data"));
    }
    if let Some(names) = class_names {
        out.labels = Some(labels);
        out.class_names = names;
    }
    Ok(out)
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Read a UCR archive `.tsv` file: one univariate series per line, the class label first,
/// values separated by tabs (or commas); trailing `NaN`s pad shorter series and are dropped.
/// Classes are named by their label text, in order of first appearance sorted as numbers
/// where they all are numbers.
pub fn read_ucr_tsv(path: &Path) -> Result<SeriesDataset> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut raw_labels = Vec::new();
    let mut out = SeriesDataset {
        channels: 1,
        values: Vec::new(),
        lengths: Vec::new(),
        labels: None,
        class_names: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let sep = if line.contains('\t') { '\t' } else { ',' };
        let mut fields = line.split(sep);
        let label = fields.next().unwrap_or("").trim().to_string();
        if label.is_empty() {
            return Err(Error::format(
                path,
                format!("line {n}: the class label (first field) is empty"),
            ));
        }
        let mut values = Vec::new();
        for (j, v) in fields.enumerate() {
            let what = || format!("value {}", j + 1);
            values.push(parse_value(path, n, &what, v)?);
        }
        while values.last().is_some_and(|v| v.is_nan()) {
            values.pop();
        }
        if values.is_empty() {
            return Err(Error::format(
                path,
                format!("line {n}: a label and no values"),
            ));
        }
        raw_labels.push(label);
        out.lengths.push(values.len());
        out.values.push(values);
    }
    if out.values.is_empty() {
        return Err(Error::format(path, "no series: the file is empty"));
    }
    let mut names: Vec<String> = Vec::new();
    for l in &raw_labels {
        if !names.contains(l) {
            names.push(l.clone());
        }
    }
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap()
                .total_cmp(&b.parse::<f64>().unwrap())
        });
    }
    out.labels = Some(
        raw_labels
            .iter()
            .map(|l| names.iter().position(|n| n == l).unwrap() as u32)
            .collect(),
    );
    out.class_names = names;
    Ok(out)
}

/// Read a `.ts` or `.tsv` file by its extension.
pub fn read_series(path: &Path) -> Result<SeriesDataset> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("ts") => read_ts(path),
        Some("tsv") => read_ucr_tsv(path),
        _ => Err(Error::format(path, "expected a .ts or .tsv file")),
    }
}

/// The training and test splits of a UCR/UEA archive set `name`: `<root>/<name>/<name>_TRAIN.ts`
/// and `_TEST.ts` (or `.tsv`), `root` being `explicit` or `$CONTRA_DATA/ucr`. The test split's
/// labels are expressed in the training split's class order.
pub fn load_archive_set(
    name: &str,
    explicit: Option<&Path>,
) -> Result<(SeriesDataset, SeriesDataset)> {
    let roots: Vec<std::path::PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => super::locate::data_root()
            .map(|r| vec![r.join("ucr")])
            .unwrap_or_default(),
    };
    for root in &roots {
        for ext in ["ts", "tsv"] {
            let train = root.join(name).join(format!("{name}_TRAIN.{ext}"));
            let test = root.join(name).join(format!("{name}_TEST.{ext}"));
            if train.is_file() && test.is_file() {
                let tr = read_series(&train)?;
                let mut te = read_series(&test)?;
                if te.channels != tr.channels {
                    return Err(Error::format(
                        &test,
                        format!(
                            "{} dimensions, the training split has {}",
                            te.channels, tr.channels
                        ),
                    ));
                }
                te.relabel(&tr.class_names, &test)?;
                return Ok((tr, te));
            }
        }
    }
    Err(Error::other(format!(
        "UCR/UEA set `{name}` not found: looked for {name}/{name}_TRAIN.ts (or .tsv) and _TEST in {} (set $CONTRA_DATA so that $CONTRA_DATA/ucr/{name}/ holds them, e.g. aeon's datasets/data folder)",
        if roots.is_empty() {
            "no folder: $CONTRA_DATA is not set and ~/.cache/contra-data does not exist".to_string()
        } else {
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("contra-series-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_multivariate_unequal_series_with_missing_values() {
        let p = write(
            "mv.ts",
            "# comment\n@problemName X\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true a b\n@data\n1,2,3:4,?,6:b\n0.5,NaN:1,2:a\n",
        );
        let d = read_ts(&p).unwrap();
        assert_eq!((d.channels, d.len(), d.lengths.clone()), (2, 2, vec![3, 2]));
        assert_eq!(d.channel(0, 0), &[1.0, 2.0, 3.0]);
        assert!(d.channel(0, 1)[1].is_nan() && d.channel(0, 1)[2] == 6.0);
        assert!(d.channel(1, 0)[1].is_nan());
        assert_eq!(d.labels, Some(vec![1, 0]));
        assert_eq!(d.class_names, vec!["a", "b"]);
    }

    #[test]
    fn broken_files_get_clear_errors() {
        let header = "@univariate false\n@dimensions 2\n@equalLength true\n@seriesLength 3\n@classLabel true 1 2\n@data\n";
        let cases = [
            (
                "dims.ts",
                format!("{header}1,2,3:4,5,6:1\n1,2,3:1\n"),
                "line 8: 1 dimensions, expected 2",
            ),
            (
                "label.ts",
                format!("{header}1,2,3:4,5,6:3\n"),
                "line 7: class label `3` is not one of",
            ),
            (
                "ragged.ts",
                format!("{header}1,2,3:4,5:1\n"),
                "line 7: dimension 2 has 2 values, dimension 1 has 3",
            ),
            (
                "length.ts",
                format!("{header}1,2:4,5:1\n"),
                "line 7: series of length 2; @equalLength true",
            ),
            (
                "nan.ts",
                format!("{header}1,x2,3:4,5,6:1\n"),
                "line 7, dimension 1, value 2: `x2` is not a number",
            ),
            ("empty.ts", String::new(), "no @data line"),
            ("nodata.ts", header.to_string(), "no series after @data"),
            (
                "missing.ts",
                format!("@missing false\n{header}1,NaN,3:4,5,6:1\n"),
                "line 8: dimension 1, value 2: a missing value, and the header says @missing false",
            ),
            (
                "tag.ts",
                "@bogus 1\n@data\n1,2\n".into(),
                "line 1: unknown header tag `@bogus`",
            ),
        ];
        for (name, text, want) in cases {
            let p = write(name, &text);
            let e = read_ts(&p).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(want), "{name}: {e}");
        }
        let p = write("bad.tsv", "1\t0.5\t0.7\n2\t0.1\tabc\n");
        let e = read_ucr_tsv(&p).unwrap_err().to_string();
        assert!(
            e.contains("bad.tsv") && e.contains("line 2, value 2: `abc` is not a number"),
            "{e}"
        );
        let p = write("empty.tsv", "\n");
        assert!(read_ucr_tsv(&p).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn tsv_labels_sort_as_numbers_and_padding_is_dropped() {
        let p = write("u.tsv", "10\t1\t2\t3\n2\t4\t5\tNaN\n10\t6\t7\t8\n");
        let d = read_ucr_tsv(&p).unwrap();
        assert_eq!(d.class_names, vec!["2", "10"]);
        assert_eq!(d.labels, Some(vec![1, 0, 1]));
        assert_eq!(d.lengths, vec![3, 2, 3]);
        let mut test = d.clone();
        test.class_names = vec!["10".into(), "2".into()];
        test.relabel(&d.class_names, &p).unwrap();
        assert_eq!(test.labels, Some(vec![0, 1, 0]));
    }
}
