//! Images with captions through the modality seam: CLIP's two towers (`method.kind =
//! "clip"`, the image tower `[encoder]`, the text tower `[text]`), zero-shot classification
//! and cross-modal retrieval. The model's embedding of an image is its place in the shared
//! space (tower and projection, L2-normalised), so the image evaluations (kNN, the probe, the
//! few-label table), `contra embed` and `contra search --text` all work in that space;
//! fine-tuning trains the image tower with its projection ([`ImageTower`]). A model file
//! keeps the text tower's tokenizer.

use super::loaded::Loaded;
use super::modality::{ImagePrep, InputRecipe, Modality};
use crate::augment::captions::{CaptionViews, TextSource};
use crate::data::Splits;
use crate::data::captions::ImageTextDataset;
use crate::data::text::TextTokenizer;
use crate::encoders::Backbone;
use crate::encoders::Encoder;
use crate::encoders::bert::Tokens;
use crate::encoders::sentence::{TextEncoderMeta, encode_sentences};
use crate::error::{Error, Result};
use crate::eval::features::input_batch;
use crate::eval::finetune::{ImageInputs, Inputs};
use crate::features::Features;
use crate::methods::MethodSpec;
use crate::methods::clip::{Clip, ClipConfig, ImageTower};
use crate::recipe::Recipe;
use crate::seeding::try_seeded;
use crate::tensor_util::to_vec;
use crate::train::{LoopSpec, Monitors, TrainOptions, TrainReport, TrainedFile, run_loop};
use burn::prelude::*;
use serde::Serialize;
use std::sync::Arc;

/// Items embedded at once.
const EMBED_BATCH: usize = 256;

/// A trained CLIP model with its text tower's tokenizer.
pub struct TrainedClip {
    pub model: Clip,
    pub tokenizer: Arc<TextTokenizer>,
    pub meta: TextEncoderMeta,
}

fn normalize_rows(mut f: Features) -> Features {
    for row in f.data.chunks_mut(f.dim.max(1)) {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= n);
    }
    f
}

impl TrainedClip {
    /// Texts in the shared space, L2-normalised (inference).
    pub fn embed_texts(&self, texts: &[&str], device: &Device) -> Result<Features> {
        let model = self.model.valid();
        let dim = model.text_projection.weight.dims()[1];
        let mut data = Vec::with_capacity(texts.len() * dim);
        for chunk in texts.chunks(EMBED_BATCH) {
            let tokens = Tokens::new(&self.tokenizer.encode(chunk)?, device);
            data.extend(to_vec(model.embed_texts(&tokens)));
        }
        Ok(normalize_rows(Features {
            data,
            rows: texts.len(),
            dim,
        }))
    }

    /// Images in the shared space, L2-normalised (inference).
    pub fn embed_images(
        &self,
        data: &crate::data::ImageDataset,
        prep: &ImagePrep,
        device: &Device,
    ) -> Features {
        embed_with_tower(&self.model.image_tower(), data, prep, device)
    }
}

/// Images through an image tower (inference): L2-normalised rows.
fn embed_with_tower(
    tower: &ImageTower,
    data: &crate::data::ImageDataset,
    prep: &ImagePrep,
    device: &Device,
) -> Features {
    let tower = tower.valid();
    let dim = tower.output_dim();
    let mut out = Vec::with_capacity(data.len * dim);
    for start in (0..data.len).step_by(EMBED_BATCH) {
        let rows: Vec<usize> = (start..(start + EMBED_BATCH).min(data.len)).collect();
        let x = input_batch(data, &rows, prep.normalize.as_ref(), prep.size, device);
        out.extend(to_vec(tower.forward_rows(x, None)));
    }
    Features {
        data: out,
        rows: data.len,
        dim,
    }
}

/// Images with captions (`data.source` = captions, emoji or class-captions).
pub struct ImageText;

impl Modality for ImageText {
    type Dataset = ImageTextDataset;
    type Model = TrainedClip;
    type Encoder = ImageTower;
    type Prep = ImagePrep;

    fn items(_: &Recipe) -> &'static str {
        "images"
    }
    fn describe(data: &ImageTextDataset) -> String {
        let captions = data.distinct_captions().len();
        let i = &data.images;
        format!(
            "{} images {}x{}x{} with {captions} distinct captions",
            i.len, i.channels, i.height, i.width
        )
    }
    fn raw_name() -> &'static str {
        "raw pixels"
    }
    fn load(recipe: &Recipe) -> Result<Splits<ImageTextDataset>> {
        crate::data::locate::load_image_text(&recipe.data)
    }
    fn prep(
        recipe: &Recipe,
        splits: &Splits<ImageTextDataset>,
        _: &TrainedClip,
    ) -> Result<ImagePrep> {
        let images = &splits.train.images;
        Ok(ImagePrep::of(&recipe.pipeline(images)?, images))
    }
    fn pretrain(
        recipe: &Recipe,
        train: &ImageTextDataset,
        opts: &TrainOptions,
    ) -> Result<TrainReport<TrainedClip>> {
        pretrain_clip(recipe, train, opts)
    }
    fn read(file: &TrainedFile, _: &ImageTextDataset, device: &Device) -> Result<TrainedClip> {
        read_clip_model(file, device)
    }
    fn into_encoder(model: TrainedClip) -> ImageTower {
        model.model.into_image_tower()
    }
    fn random_encoder(
        recipe: &Recipe,
        data: &ImageTextDataset,
        _: &ImagePrep,
        seed: u64,
        device: &Device,
    ) -> Result<ImageTower> {
        let dim = clip_config(recipe)?.dim;
        try_seeded(device, seed, || {
            Ok::<_, Error>(ImageTower::new(
                recipe.encoder.init(data.images.channels, device)?,
                dim,
                device,
            ))
        })
    }
    fn embed(
        model: &TrainedClip,
        data: &ImageTextDataset,
        prep: &ImagePrep,
        device: &Device,
    ) -> Features {
        model.embed_images(&data.images, prep, device)
    }
    fn embed_with(
        tower: &ImageTower,
        data: &ImageTextDataset,
        prep: &ImagePrep,
        device: &Device,
    ) -> Features {
        embed_with_tower(tower, &data.images, prep, device)
    }
    fn raw(data: &ImageTextDataset, prep: &ImagePrep) -> Features {
        crate::eval::features::raw(&data.images, prep.normalize.as_ref())
    }
    fn finetune_inputs(data: ImageTextDataset, prep: &ImagePrep) -> Result<Arc<dyn Inputs>> {
        Ok(Arc::new(ImageInputs::new(
            data.images,
            prep.size,
            prep.normalize.clone(),
        )?))
    }
    fn own_evaluation(l: &Loaded<Self>) -> Result<String> {
        Ok(ClipEvaluation::of(l)?.to_text())
    }
    fn index_metadata(data: &ImageTextDataset, prep: &ImagePrep) -> (String, String) {
        InputRecipe::of(&data.images, prep).metadata()
    }
}

fn clip_config(recipe: &Recipe) -> Result<&ClipConfig> {
    match &recipe.method {
        MethodSpec::Clip(c) => Ok(c),
        other => Err(Error::config(
            "method.kind",
            format!(
                "images with captions train with `clip`, not `{}`",
                other.name()
            ),
        )),
    }
}

/// The image tower a recipe starts from: drawn afresh, or the encoder of the model file in
/// `method.image_init` (which must have the recipe's `[encoder]`).
fn image_tower(
    recipe: &Recipe,
    config: &ClipConfig,
    channels: usize,
    device: &Device,
) -> Result<Encoder> {
    let Some(path) = &config.image_init else {
        return try_seeded(device, recipe.seed, || {
            recipe.encoder.init(channels, device)
        });
    };
    let file = TrainedFile::read(path)?;
    if file.recipe.encoder != recipe.encoder {
        return Err(Error::config(
            "method.image_init",
            format!(
                "{} was trained with another [encoder] than this recipe's; copy its [encoder] table",
                path.display()
            ),
        ));
    }
    if file.recipe.data.is_series()
        || file.recipe.data.is_text()
        || file.recipe.data.is_image_text()
    {
        return Err(Error::config(
            "method.image_init",
            format!("{} is not an image model", path.display()),
        ));
    }
    Ok(crate::methods::Method::into_encoder(
        file.model(channels, device)?,
    ))
}

/// Train CLIP on `train`, writing into the recipe's output folder; frozen towers are run once
/// over the data first and their outputs cached.
pub fn pretrain_clip(
    recipe: &Recipe,
    train: &ImageTextDataset,
    opts: &TrainOptions,
) -> Result<TrainReport<TrainedClip>> {
    let config = clip_config(recipe)?;
    let text_spec = recipe
        .text
        .as_ref()
        .ok_or_else(|| Error::config("text", "`clip` needs a [text] table for its text tower"))?;
    let device = crate::device::parse(&recipe.train.device)?;
    let ad = device.clone().autodiff();
    let prepared = text_spec
        .prepare()
        .map_err(|e| e.rekey("encoder.", "text."))?;
    let channels = train.images.channels;
    let image = image_tower(recipe, config, channels, &ad)?;
    let text = try_seeded(&ad, recipe.seed, || prepared.encoder(&ad))?;
    let model = try_seeded(&ad, recipe.seed ^ 0x434c_4950, || {
        Ok::<_, Error>(Clip::new(config, image, text, &ad))
    })?;
    let tokenizer = Arc::new(prepared.tokenizer);
    let pipeline = recipe.pipeline(&train.images)?;
    // How evaluation and queries see the images: also what a frozen image tower caches.
    let prep = ImagePrep::of(&pipeline, &train.images);
    let texts = if config.freeze_text {
        let captions = train.distinct_captions();
        TextSource::Cached(encode_sentences(
            &model.text.valid(),
            &tokenizer,
            &captions,
            EMBED_BATCH,
            &device,
        )?)
    } else {
        TextSource::Tokenizer(tokenizer.clone())
    };
    let images = if config.freeze_image {
        Err(crate::eval::features::encode(
            &model.image,
            &train.images,
            prep.normalize.as_ref(),
            prep.size,
            EMBED_BATCH,
            &device,
        ))
    } else {
        Ok(pipeline)
    };
    let source = Arc::new(CaptionViews::new(train.clone(), images, texts));
    let meta = prepared.meta;
    let mut metadata = meta.to_meta(&tokenizer);
    metadata.push(InputRecipe::of(&train.images, &prep).metadata());
    let spec = LoopSpec {
        metadata,
        ..LoopSpec::of_recipe(recipe)
    };
    let report = run_loop(&spec, source, model, &ad, opts, Monitors::none())?;
    Ok(report.map(|model| TrainedClip {
        model,
        tokenizer,
        meta,
    }))
}

/// An image file in the shared space of the CLIP model in `file` (a query for `contra search
/// --image`).
pub fn embed_image_file(
    file: &TrainedFile,
    image: &std::path::Path,
    device: &Device,
) -> Result<Features> {
    let input = input_recipe(file)?;
    let model = read_clip_model(file, device)?;
    let item = input.read_image(image)?;
    let prep = ImagePrep {
        normalize: input.normalize,
        size: input.input_size,
    };
    Ok(model.embed_images(&item, &prep, device))
}

/// How a CLIP model file's images become image-tower input.
fn input_recipe(file: &TrainedFile) -> Result<InputRecipe> {
    file.meta
        .get(InputRecipe::META_KEY)
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| Error::format(&file.path, "a CLIP model file without contra.input"))
}

/// The CLIP model in a model file (or checkpoint), with its tokenizer.
pub fn read_clip_model(file: &TrainedFile, device: &Device) -> Result<TrainedClip> {
    let recipe = &file.recipe;
    let config = clip_config(recipe)?;
    let (meta, tokenizer) = TextEncoderMeta::from_meta(&file.meta, &file.path)?;
    let input = input_recipe(file)?;
    let image = recipe.encoder.init(input.channels, device)?;
    let model = Clip::new(config, image, meta.init(device), device);
    Ok(TrainedClip {
        model: file.load(model)?,
        tokenizer: Arc::new(tokenizer),
        meta,
    })
}

/// Zero-shot accuracy on one labelling.
#[derive(Clone, Debug, Serialize)]
pub struct ZeroShotRow {
    /// The labelling (`category`, `subcategory`, `class`).
    pub labels: String,
    pub classes: usize,
    pub images: usize,
    pub prompts_per_class: usize,
    pub accuracy: f64,
    /// The accuracy of always answering the most frequent class.
    pub majority: f64,
}

/// The class embeddings zero-shot classification compares images with: each class name in
/// every template, each prompt's embedding normalised, averaged over the templates and
/// normalised again (CLIP's prompt ensembling).
pub fn class_embeddings(
    model: &TrainedClip,
    class_names: &[String],
    templates: &[String],
    device: &Device,
) -> Result<Features> {
    let prompts: Vec<String> = class_names
        .iter()
        .flat_map(|c| templates.iter().map(move |t| t.replace("{c}", c)))
        .collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let e = model.embed_texts(&refs, device)?;
    let t = templates.len();
    let mut data = vec![0f32; class_names.len() * e.dim];
    for (c, out) in data.chunks_mut(e.dim).enumerate() {
        for p in 0..t {
            for (o, v) in out.iter_mut().zip(e.row(c * t + p)) {
                *o += v / t as f32;
            }
        }
    }
    Ok(normalize_rows(Features {
        data,
        rows: class_names.len(),
        dim: e.dim,
    }))
}

/// The class of each image by zero-shot classification against `classes`.
pub fn zero_shot_predict(images: &Features, classes: &Features) -> Vec<u32> {
    (0..images.rows)
        .map(|i| {
            let x = images.row(i);
            (0..classes.rows)
                .map(|c| {
                    let s: f32 = x.iter().zip(classes.row(c)).map(|(a, b)| a * b).sum();
                    (c, s)
                })
                .fold((0, f32::NEG_INFINITY), |best, (c, s)| {
                    if s > best.1 { (c, s) } else { best }
                })
                .0 as u32
        })
        .collect()
}

/// Zero-shot classification of `data`'s images for every labelling it has.
pub fn zero_shot(
    model: &TrainedClip,
    data: &ImageTextDataset,
    prep: &ImagePrep,
    device: &Device,
) -> Result<Vec<ZeroShotRow>> {
    if data.label_sets.is_empty() {
        return Err(Error::other(
            "zero-shot classification needs labels: these images have none (add a `label` column to the captions file)",
        ));
    }
    let images = model.embed_images(&data.images, prep, device);
    zero_shot_of(data, &images, |set| {
        class_embeddings(model, &set.class_names, &data.templates, device)
    })
}

/// Zero-shot rows of `data` from its images' embeddings and each labelling's class
/// embeddings: every labelling over all its classes, and where training left classes out,
/// the seen classes' images, the unseen ones' among all classes and among themselves.
pub fn zero_shot_of(
    data: &ImageTextDataset,
    images: &Features,
    class_embeddings: impl Fn(&crate::data::captions::LabelSet) -> Result<Features>,
) -> Result<Vec<ZeroShotRow>> {
    let mut rows = Vec::new();
    for (s, set) in data.label_sets.iter().enumerate() {
        let classes = class_embeddings(set)?;
        let all: Vec<usize> = (0..set.labels.len()).collect();
        let every: Vec<u32> = (0..set.class_names.len() as u32).collect();
        let prompts = data.templates.len();
        let mut row = |name: String, items: &[usize], among: &[u32]| {
            rows.extend(zero_shot_row(
                name, images, &classes, set, items, among, prompts,
            ));
        };
        row(set.name.clone(), &all, &every);
        let unseen = &data.unseen_classes;
        if s == 0 && !unseen.is_empty() {
            let names: Vec<&str> = unseen
                .iter()
                .map(|&c| set.class_names[c as usize].as_str())
                .collect();
            let (of_unseen, of_seen): (Vec<usize>, Vec<usize>) =
                all.iter().partition(|&&i| unseen.contains(&set.labels[i]));
            row(format!("{}, seen classes", set.name), &of_seen, &every);
            row(
                format!("{}, unseen ({})", set.name, names.join(", ")),
                &of_unseen,
                &every,
            );
            row(
                format!("{}, unseen among themselves", set.name),
                &of_unseen,
                unseen,
            );
        }
    }
    Ok(rows)
}

/// Zero-shot accuracy on `items`, choosing among the classes `among`; `None` without items.
fn zero_shot_row(
    name: String,
    images: &Features,
    classes: &Features,
    set: &crate::data::captions::LabelSet,
    items: &[usize],
    among: &[u32],
    prompts_per_class: usize,
) -> Option<ZeroShotRow> {
    if items.is_empty() {
        return None;
    }
    let rows: Vec<usize> = among.iter().map(|&c| c as usize).collect();
    let predicted = zero_shot_predict(&images.select(items), &classes.select(&rows));
    let right = items
        .iter()
        .zip(&predicted)
        .filter(|(i, p)| among[**p as usize] == set.labels[**i])
        .count();
    let mut counts = vec![0usize; set.class_names.len()];
    items
        .iter()
        .for_each(|&i| counts[set.labels[i] as usize] += 1);
    let n = items.len() as f64;
    Some(ZeroShotRow {
        labels: name,
        classes: among.len(),
        images: items.len(),
        prompts_per_class,
        accuracy: right as f64 / n,
        majority: counts.iter().copied().max().unwrap_or(0) as f64 / n,
    })
}

/// Recall at 1, 5 and 10 in both directions.
#[derive(Clone, Debug, Serialize)]
pub struct CrossModalRetrieval {
    pub images: usize,
    pub captions: usize,
    /// Image to text: a hit when any of the image's captions is among the first k.
    pub image_to_text: [f64; 3],
    /// Text to image: a hit when the caption's image is among the first k.
    pub text_to_image: [f64; 3],
}

const RECALL_AT: [usize; 3] = [1, 5, 10];

/// Image-to-text and text-to-image retrieval among `data`'s images and their distinct
/// captions: an image finds any of its captions; a caption shared by several images (a class
/// name in a template) finds any of them.
pub fn retrieval(
    model: &TrainedClip,
    data: &ImageTextDataset,
    prep: &ImagePrep,
    device: &Device,
) -> Result<CrossModalRetrieval> {
    let images = model.embed_images(&data.images, prep, device);
    retrieval_of(model, data, &images, device)
}

/// [`retrieval`] with the images' embeddings already computed.
fn retrieval_of(
    model: &TrainedClip,
    data: &ImageTextDataset,
    images: &Features,
    device: &Device,
) -> Result<CrossModalRetrieval> {
    let captions = data.distinct_captions();
    let texts = model.embed_texts(&captions, device)?;
    // has[i]: the rows of image i's captions among the distinct ones.
    let has: Vec<Vec<usize>> = data
        .captions
        .iter()
        .map(|c| {
            c.iter()
                .map(|t| captions.binary_search(&t.as_str()).expect("listed"))
                .collect()
        })
        .collect();
    let recall = |queries: &Features, index: &Features, hit: &dyn Fn(usize, usize) -> bool| {
        let found = crate::search::top_k(queries, index, 10, |_, _| false, device);
        let mut r = [0f64; 3];
        for (q, hits) in found.iter().enumerate() {
            if let Some(rank) = hits.iter().position(|h| hit(q, h.row)) {
                for (slot, &k) in r.iter_mut().zip(&RECALL_AT) {
                    *slot += (rank < k) as u8 as f64;
                }
            }
        }
        r.map(|v| v / queries.rows.max(1) as f64)
    };
    Ok(CrossModalRetrieval {
        images: images.rows,
        captions: texts.rows,
        image_to_text: recall(images, &texts, &|q, row| has[q].contains(&row)),
        text_to_image: recall(&texts, images, &|q, row| has[row].contains(&q)),
    })
}

/// Zero-shot classification and retrieval on the test split, as printed after training and
/// by `contra eval zeroshot`.
#[derive(Clone, Debug, Serialize)]
pub struct ClipEvaluation {
    pub zero_shot: Vec<ZeroShotRow>,
    pub retrieval: CrossModalRetrieval,
    pub logit_scale: f32,
}

impl ClipEvaluation {
    pub fn of(l: &Loaded<ImageText>) -> Result<Self> {
        // The test images are embedded once, for both evaluations.
        let (test, model, device) = (&l.splits.test, &l.model, &l.device);
        let images = model.embed_images(&test.images, &l.prep, device);
        Ok(Self {
            zero_shot: zero_shot_of(test, &images, |set| {
                class_embeddings(model, &set.class_names, &test.templates, device)
            })?,
            retrieval: retrieval_of(model, test, &images, device)?,
            logit_scale: l.model.model.loss.scale(),
        })
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if !self.zero_shot.is_empty() {
            let w = self
                .zero_shot
                .iter()
                .map(|z| z.labels.len())
                .max()
                .unwrap_or(0)
                .max("zero-shot".len());
            s.push_str(&format!(
                "{:<w$}  {:>7}  {:>6}  {:>7}  {:>8}  {:>8}\n",
                "zero-shot", "classes", "images", "prompts", "accuracy", "majority"
            ));
            for z in &self.zero_shot {
                s.push_str(&format!(
                    "{:<w$}  {:>7}  {:>6}  {:>7}  {:>8.4}  {:>8.4}\n",
                    z.labels, z.classes, z.images, z.prompts_per_class, z.accuracy, z.majority
                ));
            }
        }
        let r = &self.retrieval;
        let f = |v: [f64; 3]| format!("R@1 {:.4}  R@5 {:.4}  R@10 {:.4}", v[0], v[1], v[2]);
        s.push_str(&format!(
            "image->text ({} images, {} captions): {}\ntext->image: {}\nlogit scale {:.2}\n",
            r.images,
            r.captions,
            f(r.image_to_text),
            f(r.text_to_image),
            self.logit_scale
        ));
        s
    }
}
