//! Sensor streams from CSV: a header row, an optional timestamp column, one or more value
//! columns, an optional label column (0 normal, another whole number an event or anomaly) and
//! an optional group column that separates streams in one file (a sensor id, say). Streams are
//! cut into windows of a fixed length and stride for pretraining and scoring.

use super::series::SeriesDataset;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which columns of a CSV file mean what.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvColumns {
    /// Kept as text, in order; not parsed.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Value columns; empty: every column not named elsewhere.
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// What separates the fields: `","`, `";"`, `"\t"` or `"|"` (default: detected from the
    /// header line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
}

/// One stream: rows in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// The group column's value ("" without one).
    pub group: String,
    pub channel_names: Vec<String>,
    /// One vector per channel; `NaN` where a value is missing (empty or `NaN`).
    pub channels: Vec<Vec<f32>>,
    pub timestamps: Vec<String>,
    pub labels: Option<Vec<u32>>,
}

impl Stream {
    pub fn len(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Read the streams of a CSV file (one per group value, in order of first appearance): a
/// byte-order mark, quoted fields and the delimiter (`,`, `;`, tab, `|`) as spreadsheets write
/// them.
pub fn read_csv_streams(path: &Path, columns: &CsvColumns) -> Result<Vec<Stream>> {
    use super::delimited;
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = delimited::strip_bom(&raw);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::format(path, "empty file: expected a header row"));
    }
    let delimiter = match columns.delimiter {
        Some(d) => delimited::delimiter_byte(d, "data.columns.delimiter")?,
        None => delimited::detect_delimiter(bytes),
    };
    let mut reader = delimited::reader(bytes, delimiter);
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| delimited::error(path, e))?
        .iter()
        .map(str::to_string)
        .collect();
    let find = |what: &str, name: &str| {
        names.iter().position(|n| n == name).ok_or_else(|| {
            Error::format(
                path,
                format!("no {what} column `{name}` in the header; the columns are {names:?}"),
            )
        })
    };
    let ts = columns
        .timestamp
        .as_deref()
        .map(|n| find("timestamp", n))
        .transpose()?;
    let label = columns
        .label
        .as_deref()
        .map(|n| find("label", n))
        .transpose()?;
    let group = columns
        .group
        .as_deref()
        .map(|n| find("group", n))
        .transpose()?;
    let values: Vec<usize> = if columns.values.is_empty() {
        (0..names.len())
            .filter(|i| ![ts, label, group].contains(&Some(*i)))
            .collect()
    } else {
        columns
            .values
            .iter()
            .map(|n| find("value", n))
            .collect::<Result<_>>()?
    };
    if values.is_empty() {
        return Err(Error::format(path, "no value columns"));
    }
    let mut streams: Vec<Stream> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| delimited::error(path, e))?;
        let n = record.position().map_or(0, |p| p.line() as usize);
        if record.len() == 1 && record[0].is_empty() {
            continue; // a line of spaces
        }
        if record.len() != names.len() {
            return Err(Error::format(
                path,
                format!(
                    "line {n}: {} fields, the header has {}",
                    record.len(),
                    names.len()
                ),
            ));
        }
        let fields: Vec<&str> = record.iter().collect();
        let key = group.map_or("", |g| fields[g]);
        let s = match streams.iter().position(|s| s.group == key) {
            Some(p) => &mut streams[p],
            None => {
                streams.push(Stream {
                    group: key.to_string(),
                    channel_names: values.iter().map(|&c| names[c].clone()).collect(),
                    channels: vec![Vec::new(); values.len()],
                    timestamps: Vec::new(),
                    labels: label.map(|_| Vec::new()),
                });
                streams.last_mut().unwrap()
            }
        };
        for (k, &c) in values.iter().enumerate() {
            let f = fields[c];
            let v = if f.is_empty() || f.eq_ignore_ascii_case("nan") {
                f32::NAN
            } else {
                f.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        Error::format(
                            path,
                            format!("line {n}, column `{}`: `{f}` is not a number", names[c]),
                        )
                    })?
            };
            s.channels[k].push(v);
        }
        if let (Some(c), Some(l)) = (label, s.labels.as_mut()) {
            let f = fields[c];
            l.push(f.parse::<u32>().map_err(|_| {
                Error::format(
                    path,
                    format!(
                        "line {n}, column `{}`: label `{f}` is not a whole number (0 normal, 1 or more an event)",
                        names[c]
                    ),
                )
            })?);
        }
        if let Some(t) = ts {
            s.timestamps.push(fields[t].to_string());
        }
    }
    if streams.is_empty() {
        return Err(Error::format(path, "no data rows after the header"));
    }
    Ok(streams)
}

/// The streams of a CSV file, or of every `.csv` file in a folder (in name order): a file's
/// streams are named after it (`pump-3.csv`, or `pump-3.csv:<group>` with a group column),
/// and every file of a folder must have the same value columns.
pub fn read_csv_path(path: &Path, columns: &CsvColumns) -> Result<Vec<Stream>> {
    let named = |file: &Path, streams: Vec<Stream>| -> Vec<Stream> {
        let name = file
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        streams
            .into_iter()
            .map(|mut s| {
                s.group = if s.group.is_empty() {
                    name.clone()
                } else {
                    format!("{name}:{}", s.group)
                };
                s
            })
            .collect()
    };
    if !path.is_dir() {
        return Ok(named(path, read_csv_streams(path, columns)?));
    }
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::format(path, "the folder holds no .csv file"));
    }
    let mut all: Vec<Stream> = Vec::new();
    for file in &files {
        for s in named(file, read_csv_streams(file, columns)?) {
            if let Some(first) = all.first()
                && (first.channel_names != s.channel_names
                    || first.labels.is_some() != s.labels.is_some())
            {
                return Err(Error::format(
                    file,
                    format!(
                        "value columns {:?} differ from {:?} in the folder's first file",
                        s.channel_names, first.channel_names
                    ),
                ));
            }
            all.push(s);
        }
    }
    Ok(all)
}

/// Windows cut from streams, with where each came from.
#[derive(Clone, Debug)]
pub struct Windows {
    /// One series per window; its label (when the streams have labels) is the largest row
    /// label inside it, so a window with any anomalous row is anomalous.
    pub series: SeriesDataset,
    /// (stream index, first row) of each window.
    pub origins: Vec<(usize, usize)>,
}

/// Every window of `length` rows starting every `stride` rows, within each stream (a stream
/// shorter than `length` gives none).
pub fn windows(streams: &[Stream], length: usize, stride: usize) -> Result<Windows> {
    if length == 0 || stride == 0 {
        return Err(Error::config(
            "window",
            "length and stride must be at least 1",
        ));
    }
    let channels = streams.first().map_or(0, |s| s.channels.len());
    let labelled = streams.iter().all(|s| s.labels.is_some());
    let mut out = SeriesDataset {
        channels,
        values: Vec::new(),
        lengths: Vec::new(),
        labels: labelled.then(Vec::new),
        class_names: Vec::new(),
    };
    let mut origins = Vec::new();
    let mut top = 0u32;
    for (si, s) in streams.iter().enumerate() {
        if s.channels.len() != channels {
            return Err(Error::other(format!(
                "stream `{}` has {} channels, the first has {channels}",
                s.group,
                s.channels.len()
            )));
        }
        let mut start = 0;
        while start + length <= s.len() {
            let mut v = Vec::with_capacity(channels * length);
            s.channels
                .iter()
                .for_each(|c| v.extend_from_slice(&c[start..start + length]));
            out.values.push(v);
            out.lengths.push(length);
            if let (Some(l), Some(rows)) = (out.labels.as_mut(), &s.labels) {
                let m = rows[start..start + length]
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0);
                top = top.max(m);
                l.push(m);
            }
            origins.push((si, start));
            start += stride;
        }
    }
    if out.labels.is_some() {
        out.class_names = (0..=top).map(|c| c.to_string()).collect();
    }
    Ok(Windows {
        series: out,
        origins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("contra-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn groups_columns_and_windows() {
        let p = write(
            "s.csv",
            "t,id,a,b,y\n0,m1,1,10,0\n1,m1,2,20,0\n2,m2,5,50,0\n3,m1,3,,1\n4,m1,4,40,0\n5,m2,6,60,0\n",
        );
        let cols = CsvColumns {
            timestamp: Some("t".into()),
            label: Some("y".into()),
            group: Some("id".into()),
            ..Default::default()
        };
        let s = read_csv_streams(&p, &cols).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].group.as_str(), s[0].channel_names.clone()),
            ("m1", vec!["a".to_string(), "b".into()])
        );
        assert_eq!(s[0].channels[0], vec![1.0, 2.0, 3.0, 4.0]);
        assert!(s[0].channels[1][2].is_nan());
        assert_eq!(s[0].labels, Some(vec![0, 0, 1, 0]));
        assert_eq!(s[1].timestamps, vec!["2", "5"]);
        let w = windows(&s, 2, 1).unwrap();
        // m1: rows 0-1, 1-2, 2-3; m2: rows 0-1.
        assert_eq!(w.origins, vec![(0, 0), (0, 1), (0, 2), (1, 0)]);
        assert_eq!(w.series.labels, Some(vec![0, 1, 1, 0]));
        assert_eq!(w.series.values[0], vec![1.0, 2.0, 10.0, 20.0]);
        assert_eq!(w.series.channel(3, 1), &[50.0, 60.0]);
    }

    /// What spreadsheets and exports write: a byte-order mark, quoted names and fields (a
    /// comma inside quotes), `;` or tab between fields (detected, or set), CRLF line ends.
    #[test]
    fn spreadsheet_csvs_read_alike() {
        let cols = CsvColumns {
            timestamp: Some("time".into()),
            label: Some("label".into()),
            ..Default::default()
        };
        let want = |s: &[Stream]| {
            assert_eq!(s.len(), 1);
            assert_eq!(s[0].channel_names, ["temp, C", "humidity"]);
            assert_eq!(s[0].channels, [vec![21.5, 22.0], vec![40.0, 41.0]]);
            assert_eq!(s[0].timestamps, ["2024-01-01 10:00", "2024-01-01 10:05"]);
            assert_eq!(s[0].labels, Some(vec![0, 1]));
        };
        let files = [
            (
                "excel.csv",
                "\u{feff}\"time\",\"temp, C\",\"humidity\",\"label\"\r\n\"2024-01-01 10:00\",\"21.5\",40,0\r\n\"2024-01-01 10:05\",22,41,1\r\n",
            ),
            (
                "semicolon.csv",
                "\u{feff}time;temp, C;humidity;label\n2024-01-01 10:00;21.5;40;0\n2024-01-01 10:05;22;41;1\n",
            ),
            (
                "tabs.csv",
                "time\ttemp, C\thumidity\tlabel\n2024-01-01 10:00\t21.5\t40\t0\n  \n2024-01-01 10:05\t22\t41\t1\n",
            ),
        ];
        for (name, text) in files {
            want(&read_csv_streams(&write(name, text), &cols).unwrap());
        }
        // A delimiter set in the recipe wins over detection.
        let p = write(
            "pipes.csv",
            "time|temp, C|humidity|label\n2024-01-01 10:00|21.5|40|0\n2024-01-01 10:05|22|41|1\n",
        );
        let set = CsvColumns {
            delimiter: Some('|'),
            ..cols.clone()
        };
        want(&read_csv_streams(&p, &set).unwrap());
        let comma = CsvColumns {
            delimiter: Some(','),
            ..cols
        };
        let e = read_csv_streams(&p, &comma).unwrap_err().to_string();
        assert!(
            e.contains("pipes.csv") && e.contains("no timestamp column `time`"),
            "{e}"
        );
    }

    #[test]
    fn broken_files_get_clear_errors() {
        let cols = CsvColumns {
            label: Some("y".into()),
            ..Default::default()
        };
        let cases = [
            ("empty.csv", "", "empty file"),
            ("header.csv", "a,y\n", "no data rows"),
            ("col.csv", "a,b\n1,2\n", "no label column `y` in the header"),
            (
                "ragged.csv",
                "a,y\n1,0\n2\n",
                "line 3: 1 fields, the header has 2",
            ),
            (
                "text.csv",
                "a,y\n1,0\nabc,0\n",
                "line 3, column `a`: `abc` is not a number",
            ),
            (
                "label.csv",
                "a,y\n1,0\n2,x\n",
                "line 3, column `y`: label `x` is not a whole number",
            ),
        ];
        for (name, text, want) in cases {
            let p = write(name, text);
            let e = read_csv_streams(&p, &cols).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn a_folder_of_files_gives_their_streams_in_name_order() {
        let dir = std::env::temp_dir().join(format!("contra-stream-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cols = CsvColumns {
            label: Some("y".into()),
            group: Some("id".into()),
            ..Default::default()
        };
        let e = read_csv_path(&dir, &cols).unwrap_err().to_string();
        assert!(e.contains("no .csv file"), "{e}");
        std::fs::write(dir.join("pump-b.csv"), "id,a,y\ns1,1,0\ns2,2,0\ns1,3,1\n").unwrap();
        std::fs::write(dir.join("pump-a.csv"), "id,a,y\nx,7,0\nx,8,0\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "not data").unwrap();
        let s = read_csv_path(&dir, &cols).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.group.as_str()).collect();
        assert_eq!(names, ["pump-a.csv:x", "pump-b.csv:s1", "pump-b.csv:s2"]);
        assert_eq!(s[1].channels[0], vec![1.0, 3.0]);
        assert_eq!(s[1].labels, Some(vec![0, 1]));
        // Every file must have the same value columns.
        std::fs::write(dir.join("pump-c.csv"), "id,b,y\nx,1,0\n").unwrap();
        let e = read_csv_path(&dir, &cols).unwrap_err().to_string();
        assert!(e.contains("pump-c.csv") && e.contains("differ"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
