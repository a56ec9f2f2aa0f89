//! A built-in text benchmark from WordNet's noun synsets (Debian's `wordnet-base`:
//! `/usr/share/wordnet/data.noun`). An item is a synset: its text is its gloss without the
//! quoted example sentences (they often contain the lemma), its positive its lemma names
//! (underscores as spaces, joined by ", "), its label its lexicographer file (`noun.animal`,
//! `noun.artifact`, ...: 26 classes). A seeded hash of the synset's offset puts 20% of the
//! synsets in the held-out split.

use super::Splits;
use super::sentences::TextDataset;
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// WordNet's 26 noun lexicographer files, numbered 3 to 28 in `data.noun`.
pub const NOUN_FILES: [&str; 26] = [
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
];

/// One noun synset.
#[derive(Clone, Debug, PartialEq)]
pub struct Synset {
    pub offset: u64,
    /// Index into [`NOUN_FILES`].
    pub lexname: u32,
    /// Lemma names, underscores as spaces.
    pub names: Vec<String>,
    /// The gloss without its quoted examples.
    pub gloss: String,
}

/// The gloss of a `data.noun` line without the quoted example sentences.
pub fn definition(gloss: &str) -> String {
    gloss
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty() && !part.starts_with('"'))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line of `data.noun` (`offset lex_filenum n w_cnt word lex_id ... | gloss`).
pub fn parse_line(line: &str) -> std::result::Result<Synset, String> {
    let (head, gloss) = line
        .split_once(" | ")
        .ok_or_else(|| "no gloss (` | `)".to_string())?;
    let mut fields = head.split_ascii_whitespace();
    let mut next = |what: &str| fields.next().ok_or_else(|| format!("no {what}"));
    let offset: u64 = next("offset")?
        .parse()
        .map_err(|_| "bad offset".to_string())?;
    let lex: u32 = next("lexicographer file")?
        .parse()
        .map_err(|_| "bad lexicographer file".to_string())?;
    if !(3..=28).contains(&lex) {
        return Err(format!("lexicographer file {lex} is not a noun file"));
    }
    let kind = next("synset type")?;
    if kind != "n" {
        return Err(format!("synset type `{kind}`, not a noun"));
    }
    let count =
        usize::from_str_radix(next("word count")?, 16).map_err(|_| "bad word count".to_string())?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        names.push(next("word")?.replace('_', " "));
        next("lex_id")?;
    }
    Ok(Synset {
        offset,
        lexname: lex - 3,
        names,
        gloss: definition(gloss.trim_end()),
    })
}

/// Every noun synset of `data.noun`.
pub fn read_nouns(path: &Path) -> Result<Vec<Synset>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // The licence at the top is indented by two spaces.
        if line.starts_with("  ") || line.trim().is_empty() {
            continue;
        }
        out.push(
            parse_line(line).map_err(|e| Error::format(path, format!("line {}: {e}", i + 1)))?,
        );
    }
    if out.is_empty() {
        return Err(Error::format(path, "no noun synsets"));
    }
    Ok(out)
}

/// `source = "wordnet"`: WordNet's noun synsets as (gloss, names) pairs labelled by their
/// lexicographer file, 80% for training and 20% held out by a seeded hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WordnetSpec {
    /// The folder holding `data.noun` (default `/usr/share/wordnet`, then
    /// `$CONTRA_DATA/wordnet`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The hash's seed.
    pub split_seed: u64,
    /// Held-out synsets kept as the test pool (the first by the hash; 0: all).
    pub pool: usize,
    /// Training synsets used (the first by the hash; 0: all).
    pub train_limit: usize,
}

impl Default for WordnetSpec {
    fn default() -> Self {
        Self {
            path: None,
            split_seed: 0,
            pool: 1000,
            train_limit: 0,
        }
    }
}

impl WordnetSpec {
    fn locate(&self) -> Result<PathBuf> {
        let mut searched = Vec::new();
        if let Some(p) = &self.path {
            searched.push(p.clone());
        } else {
            searched.push(PathBuf::from("/usr/share/wordnet"));
            if let Some(root) = std::env::var_os("CONTRA_DATA") {
                searched.push(PathBuf::from(root).join("wordnet"));
            }
        }
        searched
            .iter()
            .map(|d| d.join("data.noun"))
            .find(|f| f.is_file())
            .ok_or(Error::NotFound {
                what: "WordNet's data.noun (apt-get install wordnet-base)".into(),
                searched,
            })
    }

    /// The training synsets and the held-out pool.
    pub fn load(&self) -> Result<Splits<TextDataset>> {
        let synsets = read_nouns(&self.locate()?)?;
        let key = |s: &Synset| Rng::derive(self.split_seed, &[0x574e_4554, s.offset]).next_u64();
        let mut keyed: Vec<(u64, Synset)> = synsets.into_iter().map(|s| (key(&s), s)).collect();
        keyed.sort_by_key(|(k, s)| (*k, s.offset));
        let (held, train): (Vec<_>, Vec<_>) = keyed.into_iter().partition(|(k, _)| k % 100 < 20);
        let take = |v: Vec<(u64, Synset)>, n: usize| {
            let n = if n == 0 { v.len() } else { n.min(v.len()) };
            dataset(v.into_iter().take(n).map(|(_, s)| s).collect())
        };
        Ok(Splits::new(
            take(train, self.train_limit),
            take(held, self.pool),
        ))
    }
}

fn dataset(synsets: Vec<Synset>) -> TextDataset {
    TextDataset {
        texts: synsets.iter().map(|s| s.gloss.clone()).collect(),
        positives: Some(synsets.iter().map(|s| s.names.join(", ")).collect()),
        negatives: None,
        labels: Some(synsets.iter().map(|s| s.lexname).collect()),
        class_names: NOUN_FILES.iter().map(|s| s.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_noun_line_gives_names_gloss_and_lexname() {
        let line = "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 023 @ 02083346 n 0000 | a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times; occurs in many breeds; \"the dog barked all night\"  ";
        let s = parse_line(line).unwrap();
        assert_eq!(s.offset, 2084071);
        assert_eq!(NOUN_FILES[s.lexname as usize], "noun.animal");
        assert_eq!(s.names, ["dog", "domestic dog", "Canis familiaris"]);
        assert_eq!(
            s.gloss,
            "a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times; occurs in many breeds"
        );
        assert!(parse_line("00001740 03 v 01 entity 0 000 | x").is_err());
        assert!(parse_line("garbage").is_err());
    }
}
