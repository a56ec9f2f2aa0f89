//! TF-IDF, the raw-input baseline of text: lower-cased words (runs of letters and digits),
//! the `max_terms` most frequent by document frequency in the fitting texts, term counts
//! times the smoothed inverse document frequency `ln((1 + n) / (1 + df)) + 1`, each row scaled
//! to unit length (scikit-learn's `TfidfVectorizer` defaults, with a capped vocabulary).

use crate::features::Features;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct Tfidf {
    vocabulary: HashMap<String, usize>,
    idf: Vec<f32>,
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl Tfidf {
    /// The vocabulary and weights of `texts`.
    pub fn fit(texts: &[&str], max_terms: usize) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for t in texts {
            let mut seen: Vec<String> = words(t).collect();
            seen.sort_unstable();
            seen.dedup();
            for w in seen {
                *df.entry(w).or_default() += 1;
            }
        }
        let mut terms: Vec<(String, usize)> = df.into_iter().collect();
        // Most frequent first; ties in alphabetical order (a fixed vocabulary).
        terms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        terms.truncate(max_terms);
        let n = texts.len() as f64;
        let idf = terms
            .iter()
            .map(|(_, d)| (((1.0 + n) / (1.0 + *d as f64)).ln() + 1.0) as f32)
            .collect();
        let vocabulary = terms
            .into_iter()
            .enumerate()
            .map(|(i, (w, _))| (w, i))
            .collect();
        Self { vocabulary, idf }
    }

    pub fn dim(&self) -> usize {
        self.idf.len()
    }

    /// The TF-IDF rows of `texts`.
    pub fn transform(&self, texts: &[&str]) -> Features {
        let dim = self.dim();
        let mut data = vec![0f32; texts.len() * dim];
        for (r, t) in texts.iter().enumerate() {
            let row = &mut data[r * dim..(r + 1) * dim];
            for w in words(t) {
                if let Some(&j) = self.vocabulary.get(&w) {
                    row[j] += self.idf[j];
                }
            }
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        Features {
            data,
            rows: texts.len(),
            dim,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values as scikit-learn's TfidfVectorizer computes them (smooth idf, l2 rows).
    #[test]
    fn tfidf_weighs_rare_words_up() {
        let docs = ["the cat sat", "the dog sat", "the cat ran"];
        let t = Tfidf::fit(&docs, 100);
        assert_eq!(t.dim(), 5);
        let f = t.transform(&["The cat, the cat!"]);
        // idf(the) = ln(4/4) + 1 = 1; idf(cat) = ln(4/3) + 1; counts 2 and 2.
        let (the, cat) = (2.0f32, 2.0 * ((4.0f32 / 3.0).ln() + 1.0));
        let norm = (the * the + cat * cat).sqrt();
        let row = f.row(0);
        let j = |w: &str| t.vocabulary[w];
        assert!((row[j("the")] - the / norm).abs() < 1e-6);
        assert!((row[j("cat")] - cat / norm).abs() < 1e-6);
        assert_eq!(row[j("dog")], 0.0);
        // Unknown words only: a zero row.
        assert!(t.transform(&["zebra"]).row(0).iter().all(|&v| v == 0.0));
        // The cap keeps the most frequent terms.
        assert_eq!(Tfidf::fit(&docs, 2).dim(), 2);
    }
}
