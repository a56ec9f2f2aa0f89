//! CLIP: image-caption data (files written here, the emoji where `.ci/run` fetched them), the
//! two towers on the one loop (the scale clamped after each step, a frozen tower untouched)
//! and zero-shot classification.

use burn::optim::GradientsParams;
use burn::prelude::*;
use contra::augment::captions::{CaptionViews, TextSource};
use contra::augment::loader::{BatchSource, LoaderConfig};
use contra::augment::{Augmentation, Normalize, Pipeline};
use contra::data::Dataset;
use contra::data::captions::{CaptionsSpec, ClassCaptionsSpec, EmojiSpec, ImageTextDataset};
use contra::data::locate::DataSpec;
use contra::encoders::EncoderSpec;
use contra::encoders::sentence::{BertSpec, encode_sentences};
use contra::features::Features;
use contra::losses::ClipLoss;
use contra::methods::Trainable;
use contra::methods::clip::{Clip, ClipConfig, ImageTextLoss};
use contra::optim::{Optimizer, OptimizerSpec};
use std::path::{Path, PathBuf};

fn cpu() -> Device {
    contra::device::parse("cpu").unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("contra-clip-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny_bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text/tiny-bert")
}

/// Whether every `$CONTRA_DATA/<rel>` exists; where CONTRA_REQUIRE_DATA is set a missing one
/// fails the test, elsewhere the test is skipped with a message.
fn have_data(rels: &[&str]) -> bool {
    let root = std::env::var_os("CONTRA_DATA").map(PathBuf::from);
    let found = rels
        .iter()
        .all(|r| root.as_ref().is_some_and(|d| d.join(r).exists()));
    if !found {
        assert!(
            std::env::var_os("CONTRA_REQUIRE_DATA").is_none(),
            "$CONTRA_DATA lacks one of {rels:?}"
        );
        eprintln!("skipping: $CONTRA_DATA lacks one of {rels:?}");
    }
    found
}

/// An RGBA PNG of `w x h` pixels, every one `px`.
fn write_png(path: &Path, w: u32, h: u32, px: [u8; 4]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    let data: Vec<u8> = (0..w * h).flat_map(|_| px).collect();
    writer.write_image_data(&data).unwrap();
}

fn captions_spec(path: PathBuf) -> CaptionsSpec {
    CaptionsSpec {
        path,
        image_size: 4,
        ..Default::default()
    }
}

/// Several rows of one image are its captions; train and test files share one class map; a
/// transparent pixel is white whatever colour it hides.
#[test]
fn caption_files_group_captions_by_image_and_share_one_class_map() {
    let dir = tmp("files");
    write_png(&dir.join("a.png"), 8, 8, [255, 0, 0, 255]);
    write_png(&dir.join("b.png"), 8, 8, [0, 0, 255, 255]);
    write_png(&dir.join("clear.png"), 8, 8, [0, 0, 0, 0]);
    std::fs::write(
        dir.join("train.csv"),
        "image,caption,label\na.png,a red square,red\na.png,\"crimson, a block\",red\nclear.png,nothing at all,empty\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("test.jsonl"),
        "{\"image\": \"b.png\", \"caption\": \"a blue square\", \"label\": \"blue\"}\n{\"image\": \"a.png\", \"caption\": \"red\", \"label\": \"red\"}\n",
    )
    .unwrap();
    let spec = CaptionsSpec {
        test_path: Some(dir.join("test.jsonl")),
        ..captions_spec(dir.join("train.csv"))
    };
    let s = spec.load().unwrap();
    assert_eq!(s.train.len(), 2);
    assert_eq!(
        s.train.captions,
        [
            vec!["a red square".to_string(), "crimson, a block".to_string()],
            vec!["nothing at all".to_string()]
        ]
    );
    assert_eq!(s.train.ids, ["a.png", "clear.png"]);
    assert_eq!(s.train.images.class_names, ["red", "empty", "blue"]);
    assert_eq!(s.test.images.class_names, s.train.images.class_names);
    assert_eq!(s.train.labels(), Some(&[0u32, 1][..]));
    assert_eq!(s.test.labels(), Some(&[2u32, 0][..]));
    assert!(
        s.train.images.image(1).iter().all(|&v| v == 255),
        "transparent is white"
    );
    let red = s.train.images.image(0);
    assert!(red[..16].iter().all(|&v| v == 255) && red[16..].iter().all(|&v| v == 0));
    // Without a test file the test images are held out by seed.
    let mut lines = String::from("image,caption\n");
    for i in 0..10 {
        write_png(&dir.join(format!("{i}.png")), 4, 4, [i * 20, 0, 0, 255]);
        lines += &format!("{i}.png,number {i}\n");
    }
    std::fs::write(dir.join("ten.csv"), lines).unwrap();
    let s = captions_spec(dir.join("ten.csv")).load().unwrap();
    assert_eq!((s.train.len(), s.test.len()), (8, 2));
    let again = captions_spec(dir.join("ten.csv")).load().unwrap();
    assert_eq!(s.test.ids, again.test.ids);
}

/// A missing image, an empty caption and an image that does not decode are errors naming the
/// file and the row; `skip_unreadable` skips the last with a count instead.
#[test]
fn bad_caption_files_name_the_row() {
    let dir = tmp("bad");
    write_png(&dir.join("ok.png"), 4, 4, [9, 9, 9, 255]);
    std::fs::write(dir.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = |body: &str| {
        let p = dir.join("c.csv");
        std::fs::write(&p, body).unwrap();
        captions_spec(p).load().unwrap_err().to_string()
    };
    let e = err("image,caption\nok.png,fine\ngone.png,where is it\n");
    assert!(
        e.contains("c.csv")
            && e.contains("line 3")
            && e.contains("gone.png")
            && e.contains("not found"),
        "{e}"
    );
    let e = err("image,caption\nok.png,  \n");
    assert!(e.contains("line 2") && e.contains("empty caption"), "{e}");
    let e = err("image,caption\nok.png,fine\nbroken.png,a broken file\n");
    assert!(
        e.contains("line 3") && e.contains("broken.png") && e.contains("skip_unreadable"),
        "{e}"
    );
    let e = err("picture,caption\nok.png,fine\n");
    assert!(e.contains("no `image` column"), "{e}");
    let p = dir.join("skip.csv");
    let mut body = String::from("image,caption\nbroken.png,a broken file\n");
    for i in 0..5 {
        body += &format!("ok.png,fine {i}\n");
    }
    write_png(&dir.join("ok2.png"), 4, 4, [1, 2, 3, 255]);
    body += "ok2.png,another\n";
    std::fs::write(&p, body).unwrap();
    let s = CaptionsSpec {
        skip_unreadable: true,
        test_fraction: 0.5,
        ..captions_spec(p)
    }
    .load()
    .unwrap();
    assert_eq!(
        s.train.len() + s.test.len(),
        2,
        "the broken image is skipped"
    );
}

/// Class names in templates: the zero-shot templates never caption a training image, and
/// excluded classes leave training (images and captions) but stay in the test split.
#[test]
fn class_captions_never_train_on_the_zero_shot_prompts() {
    let dir = tmp("templates");
    let templates = dir.join("templates.json");
    std::fs::write(
        &templates,
        r#"{"train": ["a {c}.", "a photo of a {c}.", "the {c}, drawn"], "zs": ["a photo of a {c}.", "itap of a {c}."]}"#,
    )
    .unwrap();
    let spec = ClassCaptionsSpec {
        images: Box::new(DataSpec::Digits(Default::default())),
        templates: "train".into(),
        zeroshot_templates: "zs".into(),
        templates_path: Some(templates.clone()),
        exclude_classes: vec!["3".into()],
    };
    let s = spec.load().unwrap();
    let labels = s.train.labels().unwrap();
    assert!(!labels.contains(&3) && s.test.labels().unwrap().contains(&3));
    let first = labels[0];
    assert_eq!(
        s.train.captions[0],
        [format!("a {first}."), format!("the {first}, drawn")]
    );
    assert!(
        s.train
            .captions
            .iter()
            .flatten()
            .all(|c| !c.starts_with("a photo of") && !c.starts_with("itap"))
    );
    assert_eq!(s.test.templates, ["a photo of a {c}.", "itap of a {c}."]);
    assert_eq!(s.test.unseen_classes, [3]);
    let e = ClassCaptionsSpec {
        zeroshot_templates: "cifar10".into(),
        ..spec.clone()
    }
    .load()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no template list `cifar10`") && e.contains("train, zs"),
        "{e}"
    );
    let e = ClassCaptionsSpec {
        exclude_classes: vec!["sandal".into()],
        ..spec
    }
    .load()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("data.exclude_classes") && e.contains("sandal"),
        "{e}"
    );
}

/// The emoji of emoji-datasource-twitter 16.0.0 (where `.ci/run` unpacked them): 1,911
/// images, 20% held out by seed, named by their names, labelled by category and subcategory.
#[test]
fn the_emoji_load_with_their_names_as_captions() {
    if !have_data(&["emoji-datasource-twitter/emoji.json"]) {
        return;
    }
    let s = EmojiSpec::default().load().unwrap();
    assert_eq!(s.train.len() + s.test.len(), 1911);
    assert_eq!(s.test.len(), 382);
    let sets = &s.train.label_sets;
    assert_eq!(
        (sets[0].name.as_str(), sets[0].class_names.len()),
        ("category", 10)
    );
    assert_eq!(
        (sets[1].name.as_str(), sets[1].class_names.len()),
        ("subcategory", 99)
    );
    assert!(s.test.captions.iter().all(|c| c.len() == 1));
    let all: Vec<(&String, &Vec<String>)> = s
        .train
        .ids
        .iter()
        .zip(&s.train.captions)
        .chain(s.test.ids.iter().zip(&s.test.captions))
        .collect();
    // Name and short names, never the category ("animals & nature") or subcategory.
    let (_, dog) = all
        .iter()
        .find(|(id, _)| *id == "dog face")
        .expect("dog face");
    assert!(
        dog[..] == ["dog face"] || dog[..] == ["dog face", "dog"],
        "{dog:?}"
    );
    // Every emoji is drawn on white: the corner pixel of most images is white.
    let white = (0..s.train.len())
        .filter(|&i| s.train.images.image(i)[0] == 255)
        .count();
    assert!(white * 2 > s.train.len(), "{white}");
}

/// Four coloured squares with two captions each.
fn squares() -> ImageTextDataset {
    let colours: [(&str, [u8; 3]); 4] = [
        ("red", [255, 0, 0]),
        ("green", [0, 255, 0]),
        ("blue", [0, 0, 255]),
        ("black", [0, 0, 0]),
    ];
    let mut pixels = Vec::new();
    for (_, c) in &colours {
        for ch in c {
            pixels.extend(std::iter::repeat_n(*ch, 16));
        }
    }
    ImageTextDataset {
        images: contra::data::ImageDataset::new(pixels, 3, 4, 4, None).unwrap(),
        captions: colours
            .iter()
            .map(|(n, _)| vec![format!("a {n} square"), format!("{n}")])
            .collect(),
        ids: colours.iter().map(|(n, _)| n.to_string()).collect(),
        label_sets: Vec::new(),
        templates: vec!["{c}".into()],
        unseen_classes: Vec::new(),
    }
}

/// Image-caption pairs of `data`, images normalised to [-1, 1].
fn squares_source(data: ImageTextDataset, texts: TextSource) -> CaptionViews {
    CaptionViews::new(
        data,
        Ok(Pipeline::new(vec![Augmentation::Normalize(Normalize {
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
        })])
        .unwrap()),
        texts,
    )
}

/// One view, batches of four.
fn four_at_a_time() -> LoaderConfig {
    LoaderConfig {
        batch_size: 4,
        views: 1,
        workers: 1,
        prefetch: 1,
        seed: 3,
        per_class: 0,
    }
}

fn tiny_clip(config: &ClipConfig, dev: &Device) -> (Clip, contra::data::text::TextTokenizer) {
    let prepared = BertSpec {
        path: tiny_bert(),
        ..Default::default()
    }
    .prepare()
    .unwrap();
    // Seeded: the gradient tests compare sums taken in different orders, so their margin
    // depends on the weights.
    let model = contra::seeding::seeded(dev, 0, || {
        let image = EncoderSpec::default().init(3, dev).unwrap();
        let text = prepared.encoder(dev).unwrap();
        Clip::new(config, image, text, dev)
    });
    (model, prepared.tokenizer)
}

fn weights(m: &impl burn::module::Module) -> Vec<f32> {
    contra::checkpoint::module_tensors(m)
        .into_values()
        .flat_map(|t| t.data)
        .collect()
}

/// After each optimizer step the scale is clamped to [1, 100], and a frozen text tower, served from its cached outputs, does not move while the image tower
/// and both projections do.
#[test]
fn the_scale_clamps_after_each_step_and_a_frozen_tower_stays() {
    let dev = cpu().autodiff();
    let config = ClipConfig {
        freeze_text: true,
        ..Default::default()
    };
    let (mut model, tokenizer) = tiny_clip(&config, &dev);
    let data = squares();
    let captions = data.distinct_captions();
    let cache = encode_sentences(&model.text.valid(), &tokenizer, &captions, 8, &cpu()).unwrap();
    let source = squares_source(data, TextSource::Cached(cache));
    let cfg = four_at_a_time();
    let text_before = weights(&model.text);
    let image_before = weights(&model.image);
    let projection_before = weights(&model.text_projection);
    let mut opt = Optimizer::new(OptimizerSpec::sgd(0.5, 0.0, 0.0)).unwrap();
    for step in 0..2 {
        let batch = source.make_batch(&cfg, step, &[0, 1, 2, 3]).unwrap();
        let (loss, grads) = model.batch_gradients(batch, &dev);
        assert!(loss.is_finite());
        model = opt.step(0.5, model, grads);
        model = model.after_optimizer_step(step, 2);
    }
    assert_eq!(weights(&model.text), text_before, "the frozen tower moved");
    assert_ne!(weights(&model.image), image_before);
    assert_ne!(weights(&model.text_projection), projection_before);
    // A step that takes the scale from 99 past 100 (and one from 1.5 below 1) ends clamped.
    for (start, push, clamped) in [(99.0f32, -1.0f32, 100.0f32), (1.5, 1.0, 1.0)] {
        model.loss = ImageTextLoss::Clip(ClipLoss::with_scale(start, &dev));
        let ImageTextLoss::Clip(loss) = &model.loss else {
            unreachable!()
        };
        let mut grads = GradientsParams::new();
        grads.register(loss.logit_scale.id, Tensor::<1>::from_floats([push], &dev));
        model = opt.step(1.0, model, grads);
        let unclamped = model.loss.scale();
        assert!(
            (unclamped - start * (-push).exp()).abs() < 1e-2,
            "{unclamped}"
        );
        model = model.after_optimizer_step(2, 3);
        assert!(
            (model.loss.scale() - clamped).abs() < 1e-4,
            "{}",
            model.loss.scale()
        );
    }
    // Captions are drawn per epoch from the seed: both of an image's captions turn up.
    let drawn: std::collections::HashSet<usize> =
        (0..20).map(|e| source.caption_of(3, e, 0)).collect();
    assert_eq!(drawn.len(), 2);
    assert_eq!(source.caption_of(3, 7, 1), source.caption_of(3, 7, 1));
}

/// Zero-shot classification: each image takes the class whose averaged, renormalised prompt
/// embedding is nearest.
#[test]
fn zero_shot_picks_the_nearest_class_embedding() {
    use contra::workflow::clip::zero_shot_predict;
    let f = |rows: usize, data: Vec<f32>| Features { data, rows, dim: 2 };
    let images = f(3, vec![1.0, 0.1, 0.0, 1.0, -1.0, 0.2]);
    let classes = f(2, vec![1.0, 0.0, 0.0, 1.0]);
    assert_eq!(zero_shot_predict(&images, &classes), [0, 1, 1]);

    // With a class left out of training, its images are scored apart: among all classes and
    // among the unseen ones alone.
    use contra::data::captions::LabelSet;
    use contra::workflow::clip::zero_shot_of;
    let mut data = squares();
    data.label_sets = vec![LabelSet {
        name: "colour".into(),
        class_names: vec!["red".into(), "green".into(), "blue".into(), "black".into()],
        labels: vec![0, 1, 2, 3],
    }];
    data.unseen_classes = vec![2, 3];
    let d = |rows: usize, data: Vec<f32>| Features { data, rows, dim: 3 };
    // Image 2 (blue) sits nearest green's class, image 3 (black) nearest its own.
    let images = d(
        4,
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.1, 0.9, 0.5, 0.0, 0.2, -1.0],
    );
    let classes = d(
        4,
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, -1.0],
    );
    let rows = zero_shot_of(&data, &images, |_| Ok(classes.clone())).unwrap();
    let acc: Vec<(&str, usize, usize, f64)> = rows
        .iter()
        .map(|r| (r.labels.as_str(), r.classes, r.images, r.accuracy))
        .collect();
    assert_eq!(
        acc,
        [
            ("colour", 4, 4, 0.75),
            ("colour, seen classes", 4, 2, 1.0),
            ("colour, unseen (blue, black)", 4, 2, 0.5),
            ("colour, unseen among themselves", 2, 2, 1.0),
        ]
    );
}

/// Fashion-MNIST captioned from clip-benchmark 1.6.2's templates (where `.ci/run` fetched
/// them): the 68 `imagenet1k` templates that are not among the 18 `cifar10` ones caption
/// training images; the 18 prompt zero-shot classification.
#[test]
fn fashion_mnist_captions_come_from_clip_benchmark_templates() {
    if !have_data(&["clip-benchmark/en_zeroshot_classification_templates.json"])
        || !Path::new("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").is_file()
    {
        assert!(
            std::env::var_os("CONTRA_REQUIRE_DATA").is_none(),
            "no Fashion-MNIST"
        );
        return;
    }
    let spec: DataSpec = toml::from_str(
        "source = \"class-captions\"\nexclude_classes = [\"Sandal\", \"bag\"]\n[images]\nsource = \"fashion-mnist\"\ntrain_limit = 2000\n",
    )
    .unwrap();
    let s = contra::data::locate::load_image_text(&spec).unwrap();
    assert_eq!(s.train.captions[0].len(), 68);
    assert_eq!(s.test.templates.len(), 18);
    assert_eq!(s.test.len(), 10_000);
    let train = s.train.labels().unwrap();
    assert!(!train.contains(&5) && !train.contains(&8));
    assert!(
        s.train
            .captions
            .iter()
            .flatten()
            .all(|c| !c.contains("sandal"))
    );
    assert_eq!(s.train.label_sets[0].class_names[9], "ankle boot");
}

/// Across processes (ranks that are threads here), CLIP and SigLIP contrast the global
/// batch: the gradients summed over 2 and 3 ranks (shares 2+2, 2+1+1) equal one process's,
/// the learnable scale (and SigLIP's bias) counted once, BatchNorm synchronised.
#[test]
fn clip_across_ranks_has_the_single_process_gradient() {
    use burn::module::{Module, ModuleVisitor, Param};
    use contra::dist;
    use contra::methods::clip::ClipObjective;
    fn flat(model: &Clip, grads: &GradientsParams) -> Vec<f32> {
        struct Flat<'a>(&'a GradientsParams, Vec<f32>);
        impl ModuleVisitor for Flat<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(g) = self.0.get::<D>(param.id) {
                    self.1.extend(contra::tensor_util::to_vec(g));
                }
            }
        }
        let mut f = Flat(grads, Vec::new());
        model.visit(&mut f);
        f.1
    }
    let dev = cpu().autodiff();
    for loss in [ClipObjective::Clip, ClipObjective::Siglip] {
        let config = ClipConfig {
            loss,
            ..Default::default()
        };
        let (model, tokenizer) = tiny_clip(&config, &dev);
        let source = squares_source(
            squares(),
            TextSource::Tokenizer(std::sync::Arc::new(tokenizer)),
        );
        let cfg = four_at_a_time();
        let all = [0, 1, 2, 3];
        let (single_loss, grads) =
            model.batch_gradients(source.make_batch(&cfg, 0, &all).unwrap(), &dev);
        let single = flat(&model, &grads);
        for ranks in [2, 3] {
            let results: Vec<(f32, Vec<f32>)> = std::thread::scope(|s| {
                let handles: Vec<_> = dist::local_group(ranks)
                    .into_iter()
                    .enumerate()
                    .map(|(rank, group)| {
                        let (config, source, cfg, dev) = (&config, &source, &cfg, &dev);
                        s.spawn(move || {
                            dist::within(group, || {
                                // Each rank its own model, as each MPI process has: threads
                                // sharing parameters share one autodiff graph and its lock,
                                // which a collective inside the backward pass deadlocks.
                                let (model, _) = tiny_clip(config, dev);
                                let share = &all[dist::share(4, rank, ranks)];
                                let batch = source.make_batch(cfg, 0, share).unwrap();
                                let (loss, grads) = model.batch_gradients(batch, dev);
                                let group = dist::group().unwrap();
                                let grads = contra::train::data_parallel::all_reduce_gradients(
                                    &model,
                                    grads,
                                    group.as_ref(),
                                );
                                (loss, flat(&model, &grads))
                            })
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let scale = single.iter().fold(0f32, |m, g| m.max(g.abs()));
            for (rank, (l, g)) in results.iter().enumerate() {
                assert!((l - single_loss).abs() < 1e-5 * single_loss.abs().max(1.0));
                assert_eq!(g.len(), single.len());
                let worst = g
                    .iter()
                    .zip(&single)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    worst / scale < 1e-5,
                    "{loss:?} at {ranks} ranks, rank {rank}: relative difference {:.2e}",
                    worst / scale
                );
            }
        }
    }
}
