//! What every CSV reader shares: the UTF-8 byte-order mark that Excel and many exports put
//! first, the delimiter (`,`, `;`, tab or `|`) detected from the header line when the recipe
//! does not give it, and errors that name the file and line. Parsing itself is the `csv`
//! crate's (quotes, escaped quotes, delimiters inside quotes, CRLF).

use crate::error::{Error, Result};
use std::path::Path;

/// The delimiters [`detect_delimiter`] chooses among.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// `bytes` without a leading UTF-8 byte-order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes)
}

/// The delimiter of a file from its first line: of `,`, `;`, tab and `|` outside quotes, the
/// most frequent (`,` on a tie or when none occurs).
pub fn detect_delimiter(bytes: &[u8]) -> u8 {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &b in first {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
            counts[i] += 1;
        }
    }
    let best = (0..DELIMITERS.len())
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .expect("four delimiters");
    if counts[best] == 0 {
        b','
    } else {
        DELIMITERS[best]
    }
}

/// A recipe's delimiter as a byte, or an error naming `key`.
pub fn delimiter_byte(d: char, key: &str) -> Result<u8> {
    if d.is_ascii() && !d.is_ascii_alphanumeric() && d != '"' && d != '\n' && d != '\r' {
        Ok(d as u8)
    } else {
        Err(Error::config(
            key,
            format!("{d:?} cannot separate fields; use \",\", \";\", \"\\t\" or \"|\""),
        ))
    }
}

/// A `csv` reader over `bytes` (the byte-order mark already stripped): a header row, fields
/// trimmed; rows of any length (the caller names the line of a short one).
pub fn reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes)
}

/// A `csv` error as one naming the file and line.
pub fn error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line() as usize);
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => Error::format(path, format!("line {line}: not UTF-8")),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Error::format(
            path,
            format!("line {line}: {len} fields, the header has {expected_len}"),
        ),
        _ => Error::format(path, format!("line {line}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_found_outside_quotes() {
        assert_eq!(detect_delimiter(b"a,b,c\n1;2"), b',');
        assert_eq!(detect_delimiter(b"\"x,y\";b;c\n"), b';');
        assert_eq!(detect_delimiter(b"time\tvalue\n"), b'\t');
        assert_eq!(detect_delimiter(b"a|b\n"), b'|');
        assert_eq!(detect_delimiter(b"value\n1\n"), b',');
        assert_eq!(strip_bom(b"\xEF\xBB\xBFtime"), b"time");
        assert!(delimiter_byte('a', "data.delimiter").is_err());
        assert_eq!(delimiter_byte('\t', "data.delimiter").unwrap(), b'\t');
    }
}
