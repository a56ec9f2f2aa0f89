//! Text through the modality seam: sentences, pairs or labelled sentences (`data.source` =
//! text or wordnet), a BERT-family sentence encoder (`encoder.kind = "bert"`), trained with
//! in-batch negatives or SimCSE on the one loop. A text model file keeps its tokenizer and the
//! encoder's shape, so that it embeds and searches on its own.

use super::modality::Modality;
use crate::augment::text::TextViews;
use crate::data::Splits;
use crate::data::sentences::TextDataset;
use crate::data::text::TextTokenizer;
use crate::encoders::EncoderSpec;
use crate::encoders::bert::TextEncoder;
use crate::encoders::sentence::{TextEncoderMeta, encode_sentences};
use crate::error::{Error, Result};
use crate::eval::finetune::{Inputs, TextInputs};
use crate::eval::tfidf::Tfidf;
use crate::features::Features;
use crate::methods::{Method, TextMethod};
use crate::recipe::Recipe;
use crate::seeding::try_seeded;
use crate::train::{LoopSpec, Monitors, TrainOptions, TrainReport, TrainedFile, run_loop};
use burn::prelude::Device;
use std::sync::Arc;

/// Words kept by the TF-IDF baseline.
const TFIDF_TERMS: usize = 2048;
/// Texts embedded at once.
const EMBED_BATCH: usize = 64;

/// A trained text model with its tokenizer.
pub struct TrainedText {
    pub model: TextMethod,
    pub tokenizer: Arc<TextTokenizer>,
    pub meta: TextEncoderMeta,
}

impl TrainedText {
    /// The sentence encoder.
    pub fn encoder(&self) -> &TextEncoder {
        self.model.encoder()
    }

    /// Sentence embeddings of `texts` (inference).
    pub fn embed_texts(&self, texts: &[&str], device: &Device) -> Result<Features> {
        encode_sentences(
            self.model.encoder(),
            &self.tokenizer,
            texts,
            EMBED_BATCH,
            device,
        )
    }
}

/// Evaluation of text: the model's tokenizer, and TF-IDF fitted on the training texts.
#[derive(Clone)]
pub struct TextPrep {
    pub tokenizer: Arc<TextTokenizer>,
    pub meta: TextEncoderMeta,
    pub tfidf: Arc<Tfidf>,
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Text (`data.source` = text or wordnet).
pub struct Text;

impl Modality for Text {
    type Dataset = TextDataset;
    type Model = TrainedText;
    type Encoder = TextEncoder;
    type Prep = TextPrep;

    fn items(_: &Recipe) -> &'static str {
        "texts"
    }
    fn describe(data: &TextDataset) -> String {
        let mut s = format!("{} texts", data.texts.len());
        if data.positives.is_some() {
            s.push_str(" with positives");
        }
        if data.negatives.is_some() {
            s.push_str(" and hard negatives");
        }
        if data.labels.is_some() {
            s.push_str(&format!(", {} classes", data.class_names.len()));
        }
        s
    }
    fn raw_name() -> &'static str {
        "TF-IDF"
    }
    fn load(recipe: &Recipe) -> Result<Splits<TextDataset>> {
        crate::data::locate::load_text(&recipe.data)
    }
    fn prep(_: &Recipe, splits: &Splits<TextDataset>, model: &TrainedText) -> Result<TextPrep> {
        Ok(TextPrep {
            tokenizer: model.tokenizer.clone(),
            meta: model.meta.clone(),
            tfidf: Arc::new(Tfidf::fit(&strs(&splits.train.texts), TFIDF_TERMS)),
        })
    }
    fn pretrain(
        recipe: &Recipe,
        train: &TextDataset,
        opts: &TrainOptions,
    ) -> Result<TrainReport<TrainedText>> {
        pretrain_text(recipe, train, opts)
    }
    fn read(file: &TrainedFile, _: &TextDataset, device: &Device) -> Result<TrainedText> {
        read_text_model(file, device)
    }
    fn into_encoder(model: TrainedText) -> TextEncoder {
        model.model.into_encoder()
    }
    fn random_encoder(
        _: &Recipe,
        _: &TextDataset,
        prep: &TextPrep,
        seed: u64,
        device: &Device,
    ) -> Result<TextEncoder> {
        try_seeded(device, seed, || Ok(prep.meta.init(device)))
    }
    fn embed(
        model: &TrainedText,
        data: &TextDataset,
        prep: &TextPrep,
        device: &Device,
    ) -> Features {
        Self::embed_with(model.model.encoder(), data, prep, device)
    }
    fn embed_with(
        encoder: &TextEncoder,
        data: &TextDataset,
        prep: &TextPrep,
        device: &Device,
    ) -> Features {
        encode_sentences(
            encoder,
            &prep.tokenizer,
            &strs(&data.texts),
            EMBED_BATCH,
            device,
        )
        .expect("tokenizing UTF-8 text with truncation set")
    }
    fn raw(data: &TextDataset, prep: &TextPrep) -> Features {
        prep.tfidf.transform(&strs(&data.texts))
    }
    fn finetune_inputs(
        data: TextDataset,
        prep: &TextPrep,
    ) -> Result<Arc<dyn Inputs<crate::encoders::bert::Tokens>>> {
        Ok(Arc::new(TextInputs {
            texts: data.texts,
            tokenizer: prep.tokenizer.clone(),
        }))
    }
    fn index_metadata(_: &TextDataset, _: &TextPrep) -> (String, String) {
        ("contra.data".into(), "text".into())
    }
}

/// Train the recipe's text method on `train`, writing into the recipe's output folder; the
/// model file keeps the tokenizer.
pub fn pretrain_text(
    recipe: &Recipe,
    train: &TextDataset,
    opts: &TrainOptions,
) -> Result<TrainReport<TrainedText>> {
    let EncoderSpec::Bert(spec) = &recipe.encoder else {
        return Err(Error::config(
            "encoder.kind",
            "text uses encoder.kind = \"bert\"",
        ));
    };
    if recipe.train.init.is_some() {
        return Err(Error::config(
            "train.init",
            "a text encoder starts from encoder.path",
        ));
    }
    let device = crate::device::parse(&recipe.train.device)?;
    let ad = device.autodiff();
    let prepared = spec.prepare()?;
    let encoder = try_seeded(&ad, recipe.seed, || prepared.encoder(&ad))?;
    let model = recipe.method.text_model(encoder, &recipe.head, &ad)?;
    if !model.same_sentence() && train.positives.is_none() {
        return Err(Error::config(
            "method.kind",
            "`mnrl` learns from pairs, and the data have no positive column (simcse learns from single sentences)",
        ));
    }
    if recipe.method.needs_labels() && train.labels.is_none() {
        return Err(Error::config(
            "method.kind",
            format!(
                "`{}` learns from labels, and the training data have no label column",
                recipe.method.name()
            ),
        ));
    }
    let tokenizer = Arc::new(prepared.tokenizer);
    let source = Arc::new(TextViews {
        data: train.clone(),
        tokenizer: tokenizer.clone(),
        same_sentence: model.same_sentence(),
    });
    let meta = prepared.meta;
    let spec = LoopSpec {
        metadata: meta.to_meta(&tokenizer),
        ..LoopSpec::of_recipe(recipe)
    };
    let report = run_loop(&spec, source, model, &ad, opts, Monitors::none())?;
    Ok(report.map(|model| TrainedText {
        model,
        tokenizer,
        meta,
    }))
}

/// The text model in a model file (or checkpoint), with the tokenizer it keeps.
pub fn read_text_model(file: &TrainedFile, device: &Device) -> Result<TrainedText> {
    let (meta, tokenizer) = TextEncoderMeta::from_meta(&file.meta, &file.path)?;
    let recipe = &file.recipe;
    let model = file.load(
        recipe
            .method
            .text_model(meta.init(device), &recipe.head, device)?,
    )?;
    Ok(TrainedText {
        model,
        tokenizer: Arc::new(tokenizer),
        meta,
    })
}

/// A model that embeds text: a text model, or a CLIP model's text tower (into the space its
/// images share).
#[allow(clippy::large_enum_variant)] // one model per command
pub enum TextEmbedder {
    Text(TrainedText),
    Clip(super::clip::TrainedClip),
}

impl TextEmbedder {
    /// The model in `file`, whichever it is.
    pub fn read(file: &TrainedFile, device: &Device) -> Result<Self> {
        if file.recipe.data.is_image_text() {
            Ok(Self::Clip(super::clip::read_clip_model(file, device)?))
        } else {
            Ok(Self::Text(read_text_model(file, device)?))
        }
    }

    pub fn embed_texts(&self, texts: &[&str], device: &Device) -> Result<Features> {
        match self {
            Self::Text(m) => m.embed_texts(texts, device),
            Self::Clip(m) => m.embed_texts(texts, device),
        }
    }
}

/// Metadata key of a text index: its texts, as a JSON list (search prints them).
pub const META_TEXTS: &str = "contra.texts";

/// Embed the texts of `texts_path` (any text layout: `.txt` one a line, or the text column
/// of `.jsonl`, `.csv`, `.tsv`) with the text model in `model_path`, and write
/// `embeddings.npy` and the index `embeddings.safetensors` (with the texts) into `out`.
pub fn embed_text_file(
    model_path: &std::path::Path,
    texts_path: &std::path::Path,
    out: &std::path::Path,
    device: &Device,
) -> Result<Features> {
    use crate::data::sentences::{TextColumns, read_text_file};
    use crate::embed::{EmbeddingIndex, write_index, write_npy_f32};
    let file = TrainedFile::read(model_path)?;
    let model = TextEmbedder::read(&file, device)?;
    let data = read_text_file(texts_path, &TextColumns::default(), &mut Vec::new())?;
    let f = model.embed_texts(&strs(&data.texts), device)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_npy_f32(&out.join("embeddings.npy"), &f.data, f.rows, f.dim)?;
    let metadata = std::collections::HashMap::from([
        ("contra.data".to_string(), "text".to_string()),
        (
            crate::embed::META_MODEL.to_string(),
            crate::embed::model_reference(model_path, out),
        ),
        (
            "contra.source".to_string(),
            texts_path.display().to_string(),
        ),
        (
            META_TEXTS.to_string(),
            serde_json::to_string(&data.texts).expect("serialisable"),
        ),
    ]);
    write_index(
        &out.join("embeddings.safetensors"),
        &EmbeddingIndex {
            ids: (0..f.rows as i64).collect(),
            labels: None,
            embeddings: f.clone(),
            metadata,
        },
    )?;
    Ok(f)
}

/// The embedding of `query` by the model that wrote `index` (or by `model`, if given),
/// checked against the index's dimension: a text model's, for a text index; a CLIP model's
/// text tower, for its image or text index.
pub fn embed_query(
    index: &crate::embed::EmbeddingIndex,
    index_path: &std::path::Path,
    query: &str,
    model: Option<&std::path::Path>,
    device: &Device,
) -> Result<Features> {
    let text_index = index.metadata.get("contra.data").map(String::as_str) == Some("text");
    let model_path = index.query_model(model, "--text")?;
    let file = TrainedFile::read(&model_path)?;
    if !text_index && !file.recipe.data.is_image_text() {
        return Err(Error::format(
            index_path,
            "not a text index: query it with --id (or --image for images); an image index answers --text when a CLIP model wrote it",
        ));
    }
    let model = TextEmbedder::read(&file, device)?;
    index.check_query(model.embed_texts(&[query], device)?, &model_path)
}

/// The texts a text index keeps, by row.
pub fn index_texts(index: &crate::embed::EmbeddingIndex) -> Option<Vec<String>> {
    index
        .metadata
        .get(META_TEXTS)
        .and_then(|t| serde_json::from_str(t).ok())
}

/// Pair retrieval: each test text ranks the distinct positives of the test split (WordNet:
/// each held-out gloss against the names of all held-out synsets); a hit is correct when it
/// is the text's own positive (a positive shared by several items counts for each).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PairRetrieval {
    pub queries: usize,
    pub candidates: usize,
    pub recall_at_1: f64,
    pub recall_at_10: f64,
    pub mrr_at_10: f64,
}

impl PairRetrieval {
    /// Rank the `candidates` for every row of `queries`; `truth[q]` is query `q`'s candidate.
    pub fn score(
        queries: &Features,
        candidates: &Features,
        truth: &[usize],
        device: &Device,
    ) -> Self {
        let hits = crate::search::top_k(queries, candidates, 10, |_, _| false, device);
        let (mut r1, mut r10, mut mrr) = (0f64, 0f64, 0f64);
        for (q, h) in hits.iter().enumerate() {
            if let Some(rank) = h.iter().position(|hit| hit.row == truth[q]) {
                r1 += (rank == 0) as u8 as f64;
                r10 += 1.0;
                mrr += 1.0 / (rank + 1) as f64;
            }
        }
        let n = queries.rows.max(1) as f64;
        Self {
            queries: queries.rows,
            candidates: candidates.rows,
            recall_at_1: r1 / n,
            recall_at_10: r10 / n,
            mrr_at_10: mrr / n,
        }
    }
}

/// Pair retrieval on the test split by the model and by TF-IDF.
pub fn pair_retrieval(l: &super::Loaded<Text>) -> Result<(PairRetrieval, PairRetrieval)> {
    let test = &l.splits.test;
    let positives = test.positives.as_ref().ok_or_else(|| {
        Error::other("pair retrieval needs pairs: the test data have no positive column")
    })?;
    let mut distinct: Vec<&str> = positives.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let truth: Vec<usize> = positives
        .iter()
        .map(|p| distinct.binary_search(&p.as_str()).expect("listed"))
        .collect();
    let queries = l.embed(test);
    let candidates = l.model.embed_texts(&distinct, &l.device)?;
    let learned = PairRetrieval::score(&queries, &candidates, &truth, &l.device);
    let tfidf = &l.prep.tfidf;
    let raw = PairRetrieval::score(
        &tfidf.transform(&strs(&test.texts)),
        &tfidf.transform(&distinct),
        &truth,
        &l.device,
    );
    Ok((learned, raw))
}

/// The value of `column` in each row, or an error naming the file and line.
fn column_of(
    rows: &crate::data::sentences::Rows,
    names: &[&str],
    path: &std::path::Path,
) -> Result<Vec<String>> {
    let Some((_, first)) = rows.first() else {
        return Err(Error::format(path, "no items: the file is empty"));
    };
    let name = names
        .iter()
        .find(|n| first.contains_key(**n))
        .ok_or_else(|| {
            Error::format(
                path,
                format!("no column {} (one of them is needed)", names.join(" or ")),
            )
        })?;
    crate::data::sentences::column(rows, name, path)
}

/// Semantic similarity: Pearson and Spearman of the cosine of each pair against its gold
/// score.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StsScores {
    pub pairs: usize,
    pub pearson: f64,
    pub spearman: f64,
}

/// STS on a file of (`sentence1`, `sentence2`, `score`) rows (`.tsv`, `.csv` or `.jsonl`).
pub fn sts(model: &TrainedText, path: &std::path::Path, device: &Device) -> Result<StsScores> {
    use crate::data::sentences::read_table;
    let (_, rows) = read_table(path)?;
    let a = column_of(&rows, &["sentence1", "text1", "anchor"], path)?;
    let b = column_of(&rows, &["sentence2", "text2", "positive"], path)?;
    let gold: Vec<f64> = column_of(&rows, &["score", "label", "similarity"], path)?
        .iter()
        .zip(&rows)
        .map(|(v, (line, _))| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    Error::format(path, format!("line {line}: score `{v}` is not a number"))
                })
        })
        .collect::<Result<_>>()?;
    let ea = model.embed_texts(&strs(&a), device)?;
    let eb = model.embed_texts(&strs(&b), device)?;
    let cosine: Vec<f64> = (0..ea.rows)
        .map(|i| {
            let (x, y) = (ea.row(i), eb.row(i));
            let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            let n = |v: &[f32]| v.iter().map(|p| p * p).sum::<f32>().sqrt().max(1e-12);
            (dot / (n(x) * n(y))) as f64
        })
        .collect();
    use crate::eval::ranking::{pearson, spearman};
    Ok(StsScores {
        pairs: gold.len(),
        pearson: pearson(&cosine, &gold),
        spearman: spearman(&cosine, &gold),
    })
}

/// Retrieval on a data set in the BEIR layout: `corpus.jsonl` (`_id`, `title`, `text`),
/// `queries.jsonl` (`_id`, `text`) and `qrels/<split>.tsv` (`query-id`, `corpus-id`,
/// `score`). Documents are embedded as title and text joined by a space, as BEIR does for
/// sentence encoders; each query ranks the whole corpus by cosine.
pub fn beir(
    model: &TrainedText,
    dir: &std::path::Path,
    split: &str,
    device: &Device,
) -> Result<crate::eval::ranking::RankingScores> {
    use crate::data::sentences::read_table;
    use std::collections::HashMap;
    let (corpus_path, queries_path) = (dir.join("corpus.jsonl"), dir.join("queries.jsonl"));
    let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
    let (_, corpus) = read_table(&corpus_path)?;
    let doc_ids = column_of(&corpus, &["_id"], &corpus_path)?;
    let docs: Vec<String> = corpus
        .iter()
        .map(|(_, r)| {
            let title = r.get("title").map_or("", String::as_str).trim();
            let text = r.get("text").map_or("", String::as_str).trim();
            format!("{title} {text}").trim().to_string()
        })
        .collect();
    let (_, queries) = read_table(&queries_path)?;
    let query_ids = column_of(&queries, &["_id"], &queries_path)?;
    let query_texts = column_of(&queries, &["text"], &queries_path)?;
    let (_, qrels) = read_table(&qrels_path)?;
    let q = column_of(&qrels, &["query-id"], &qrels_path)?;
    let d = column_of(&qrels, &["corpus-id"], &qrels_path)?;
    let g = column_of(&qrels, &["score"], &qrels_path)?;
    let mut judged: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (i, (line, _)) in qrels.iter().enumerate() {
        let grade: u32 = g[i].trim().parse().map_err(|_| {
            Error::format(
                &qrels_path,
                format!("line {line}: score `{}` is not a whole number", g[i]),
            )
        })?;
        judged
            .entry(q[i].clone())
            .or_default()
            .insert(d[i].clone(), grade);
    }
    // Only the judged queries are asked, as BEIR does.
    let asked: Vec<usize> = (0..query_ids.len())
        .filter(|&i| judged.contains_key(&query_ids[i]))
        .collect();
    if asked.is_empty() {
        return Err(Error::format(
            &qrels_path,
            "no query of queries.jsonl is judged here",
        ));
    }
    let texts: Vec<&str> = asked.iter().map(|&i| query_texts[i].as_str()).collect();
    let qe = model.embed_texts(&texts, device)?;
    let de = model.embed_texts(&strs(&docs), device)?;
    let hits = crate::search::top_k(&qe, &de, 100, |_, _| false, device);
    let ranked: Vec<Vec<String>> = hits
        .iter()
        .map(|h| h.iter().map(|hit| doc_ids[hit.row].clone()).collect())
        .collect();
    let relevant: Vec<HashMap<String, u32>> = asked
        .iter()
        .map(|&i| judged[&query_ids[i]].clone())
        .collect();
    Ok(crate::eval::ranking::rank_scores(&ranked, &relevant))
}
