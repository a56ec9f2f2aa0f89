//! Data readers on real and broken files: every broken file gets an error naming it.

use contra::data::locate::{DataSpec, ImageSetSpec, load_splits};
use contra::data::{cifar, folder, idx};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("contra-readers-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(f, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

fn idx_set(dir: &Path, n: usize, gz: bool) {
    let images: Vec<u8> = (0..n * 28 * 28).map(|i| (i % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for (prefix, count) in [("train", n), ("t10k", n / 2)] {
        let ip = dir.join(format!("{prefix}-images-idx3-ubyte"));
        let lp = dir.join(format!("{prefix}-labels-idx1-ubyte"));
        idx::write_idx(&ip, &[count, 28, 28], &images[..count * 784]).unwrap();
        idx::write_idx(&lp, &[count], &labels[..count]).unwrap();
        if gz {
            for p in [&ip, &lp] {
                let raw = std::fs::read(p).unwrap();
                std::fs::write(format!("{}.gz", p.display()), gzip(&raw)).unwrap();
                std::fs::remove_file(p).unwrap();
            }
        }
    }
}

#[test]
fn idx_raw_and_gzipped_read_the_same() {
    let raw = tmp("idx-raw");
    let gz = tmp("idx-gz");
    idx_set(&raw, 20, false);
    idx_set(&gz, 20, true);
    assert!(gz.join("train-images-idx3-ubyte.gz").is_file());
    let spec = |p: &Path| {
        DataSpec::Mnist(ImageSetSpec {
            path: Some(p.to_path_buf()),
            ..Default::default()
        })
    };
    let a = load_splits(&spec(&raw)).unwrap();
    let b = load_splits(&spec(&gz)).unwrap();
    assert_eq!(a.train, b.train);
    assert_eq!((a.train.len, a.test.len, a.train.height), (20, 10, 28));
    assert_eq!(a.train.labels.as_ref().unwrap()[..3], [0, 1, 2]);
    assert_eq!(a.train.image(1)[0], (784 % 251) as u8);
}

#[test]
fn broken_idx_files_are_named_in_the_error() {
    let d = tmp("idx-broken");
    let p = d.join("x-idx3-ubyte");
    idx::write_idx(&p, &[3, 28, 28], &vec![0u8; 3 * 784]).unwrap();
    let full = std::fs::read(&p).unwrap();
    std::fs::write(&p, &full[..full.len() - 100]).unwrap();
    let e = idx::read_images(&p).unwrap_err().to_string();
    assert!(e.contains("x-idx3-ubyte") && e.contains("truncated"), "{e}");
    std::fs::write(&p, [0u8, 0, 8]).unwrap();
    assert!(
        idx::read_images(&p)
            .unwrap_err()
            .to_string()
            .contains("too short")
    );
    std::fs::write(&p, [1u8, 2, 8, 3, 0, 0, 0, 1]).unwrap();
    assert!(
        idx::read_images(&p)
            .unwrap_err()
            .to_string()
            .contains("magic")
    );
    std::fs::write(&p, [0u8, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
    assert!(
        idx::read_images(&p)
            .unwrap_err()
            .to_string()
            .contains("0x0d")
    );
    // A label file where images are expected.
    idx::write_idx(&p, &[4], &[1, 2, 3, 4]).unwrap();
    assert!(
        idx::read_images(&p)
            .unwrap_err()
            .to_string()
            .contains("3 dimensions")
    );
    // Corrupt gzip: valid header, garbage body.
    let gz = d.join("y-idx3-ubyte.gz");
    let mut bytes = gzip(&full);
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&gz, bytes).unwrap();
    let e = idx::read_images(&gz).unwrap_err().to_string();
    assert!(e.contains("y-idx3-ubyte.gz") && e.contains("gzip"), "{e}");
    // Labels and images that disagree in count.
    let il = d.join("labels");
    idx::write_idx(&il, &[2], &[1, 2]).unwrap();
    idx::write_idx(&p, &[3, 28, 28], &vec![0u8; 3 * 784]).unwrap();
    let e = idx::read_labelled(&p, &il).unwrap_err().to_string();
    assert!(e.contains("2 labels") && e.contains("3 images"), "{e}");
}

#[test]
fn missing_and_incomplete_data_sets_say_where_they_looked() {
    let d = tmp("missing");
    let spec = DataSpec::FashionMnist(ImageSetSpec {
        path: Some(d.join("nowhere")),
        ..Default::default()
    });
    let e = load_splits(&spec).unwrap_err().to_string();
    assert!(
        e.contains("not found")
            && e.contains("nowhere")
            && e.contains("apt-get install dataset-fashion-mnist"),
        "{e}"
    );
    idx::write_idx(&d.join("train-images-idx3-ubyte"), &[1, 2, 2], &[0; 4]).unwrap();
    let spec = DataSpec::Mnist(ImageSetSpec {
        path: Some(d.clone()),
        ..Default::default()
    });
    let e = load_splits(&spec).unwrap_err().to_string();
    assert!(
        e.contains("incomplete") && e.contains("t10k-labels-idx1-ubyte"),
        "{e}"
    );
    let e = contra::recipe::Recipe::parse(
        "[data]\nsource = \"imagenet\"\n[optimizer]\nlr = 0.1\n",
        Path::new("r.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 2") && e.contains("data.source") && e.contains("imagenet"),
        "{e}"
    );
}

#[test]
fn cifar_batches_read_and_broken_ones_fail_clearly() {
    let d = tmp("cifar");
    let mut rec = Vec::new();
    for i in 0..4u8 {
        rec.push(i % 10);
        rec.extend((0..3072).map(|j| ((j / 1024) as u8) * 50 + i));
    }
    for i in 1..=5 {
        std::fs::write(d.join(format!("data_batch_{i}.bin")), &rec).unwrap();
    }
    std::fs::write(d.join("test_batch.bin"), &rec).unwrap();
    let s = cifar::read_dir(&d).unwrap();
    assert_eq!(
        (s.train.len, s.test.len, s.train.channels, s.train.height),
        (20, 4, 3, 32)
    );
    // CHW: red plane then green then blue.
    let img = s.train.image(1);
    assert_eq!((img[0], img[1024], img[2048]), (1, 51, 101));
    assert_eq!(s.train.class_names[1], "automobile");
    std::fs::write(d.join("test_batch.bin"), &rec[..5000]).unwrap();
    let e = cifar::read_dir(&d).unwrap_err().to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("truncated"),
        "{e}"
    );
    let mut bad = rec.clone();
    bad[3073] = 42;
    std::fs::write(d.join("test_batch.bin"), &bad).unwrap();
    let e = cifar::read_dir(&d).unwrap_err().to_string();
    assert!(e.contains("record 1") && e.contains("42"), "{e}");
}

#[test]
fn image_folders_read_png_and_jpeg_with_classes() {
    let d = tmp("folder");
    std::fs::create_dir_all(d.join("cats/inner")).unwrap();
    std::fs::create_dir_all(d.join("dogs")).unwrap();
    write_png(
        &d.join("cats/a.png"),
        2,
        2,
        png::ColorType::Rgb,
        &[255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0],
    );
    write_png(
        &d.join("cats/inner/b.png"),
        2,
        2,
        png::ColorType::Grayscale,
        &[0, 255, 0, 255],
    );
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::copy(fixtures.join("two_tone.jpg"), d.join("dogs/c.JPG")).unwrap();
    std::fs::copy(fixtures.join("gray.jpg"), d.join("dogs/d.jpeg")).unwrap();
    std::fs::write(d.join("dogs/notes.txt"), "not an image").unwrap();
    let set = folder::read_folder(&d, 3, 4).unwrap();
    assert_eq!(set.len, 4);
    assert_eq!(set.class_names, vec!["cats", "dogs"]);
    assert_eq!(set.labels.as_ref().unwrap(), &vec![0, 0, 1, 1]);
    // A red PNG: red plane 255, green 0.
    assert_eq!((set.image(0)[0], set.image(0)[16]), (255, 0));
    // The two-tone JPEG keeps its left half redder than its right half.
    let c = set.image(2);
    assert!(c[0] > 150 && c[3] < 70, "{:?}", &c[..4]);
    // Mid-gray JPEG stays near 128 in every channel.
    assert!(set.image(3).iter().all(|&v| (120..=136).contains(&v)));
    let gray = folder::read_folder(&d, 1, 2).unwrap();
    assert_eq!(gray.channels, 1);
    // An unlabeled folder: images directly in the root.
    let u = tmp("folder-unlabeled");
    write_png(&u.join("x.png"), 3, 3, png::ColorType::Grayscale, &[7; 9]);
    let set = folder::read_folder(&u, 1, 3).unwrap();
    assert!(set.labels.is_none() && set.image(0).iter().all(|&v| v == 7));
}

#[test]
fn broken_images_are_named_in_the_error() {
    let d = tmp("folder-broken");
    std::fs::create_dir_all(d.join("a")).unwrap();
    let good = d.join("a/good.png");
    write_png(&good, 4, 4, png::ColorType::Grayscale, &[9; 16]);
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(d.join("a/cut.png"), &bytes[..bytes.len() - 20]).unwrap();
    let e = folder::read_folder(&d, 1, 4).unwrap_err().to_string();
    assert!(e.contains("cut.png") && e.contains("PNG"), "{e}");
    std::fs::remove_file(d.join("a/cut.png")).unwrap();
    let jpg =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/two_tone.jpg"))
            .unwrap();
    std::fs::write(d.join("a/cut.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    let e = folder::read_folder(&d, 1, 4).unwrap_err().to_string();
    assert!(e.contains("cut.jpg") && e.contains("JPEG"), "{e}");
    std::fs::write(d.join("a/cut.jpg"), b"hello, not an image").unwrap();
    let e = folder::read_folder(&d, 1, 4).unwrap_err().to_string();
    assert!(
        e.contains("cut.jpg") && e.contains("not an image in a known format"),
        "{e}"
    );
    // With skip_unreadable the broken file is left out and the rest load.
    let spec = contra::data::locate::FolderSpec {
        path: d.clone(),
        test_path: Some(d.clone()),
        channels: 1,
        image_size: 4,
        skip_unreadable: true,
        ..Default::default()
    };
    let s =
        contra::data::locate::load_splits(&contra::data::locate::DataSpec::Folder(spec)).unwrap();
    assert_eq!(s.train.names, ["a/good.png"]);
    // The good image's pixels moved into the place the skipped file left.
    assert_eq!(s.train.pixels, vec![9; 16]);
    let empty = tmp("folder-empty");
    assert!(
        folder::read_folder(&empty, 1, 4)
            .unwrap_err()
            .to_string()
            .contains("no images (PNG, JPEG")
    );
}

/// Real Fashion-MNIST as Debian's `dataset-fashion-mnist` installs it (CI installs it; on a
/// machine without it the test says so and passes unless CONTRA_REQUIRE_DATA=1).
#[test]
fn real_fashion_mnist_reads_with_known_labels() {
    let spec = DataSpec::FashionMnist(ImageSetSpec::default());
    let splits = match load_splits(&spec) {
        Ok(s) => s,
        Err(e) if std::env::var_os("CONTRA_REQUIRE_DATA").is_none() => {
            eprintln!("skipping: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!((splits.train.len, splits.test.len), (60_000, 10_000));
    assert_eq!(
        (
            splits.train.channels,
            splits.train.height,
            splits.train.width
        ),
        (1, 28, 28)
    );
    assert_eq!(
        splits.train.labels.as_ref().unwrap()[..10],
        [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    );
    assert_eq!(splits.test.labels.as_ref().unwrap()[..5], [9, 2, 1, 1, 6]);
    let mut counts = [0usize; 10];
    splits
        .train
        .labels
        .as_ref()
        .unwrap()
        .iter()
        .for_each(|&l| counts[l as usize] += 1);
    assert!(counts.iter().all(|&c| c == 6000));
    assert_eq!(splits.train.class_names[9], "Ankle boot");
}

/// Real UCR/UEA sets as aeon 1.6.0 ships them ($CONTRA_DATA/ucr: CI unpacks aeon's
/// datasets/data there; elsewhere the test says so and passes unless CONTRA_REQUIRE_DATA=1).
#[test]
fn real_ucr_archive_sets_read_with_their_published_shapes() {
    use contra::data::series::load_archive_set;
    let sets = match ["GunPoint", "ItalyPowerDemand", "BasicMotions"]
        .iter()
        .map(|n| load_archive_set(n, None))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(s) => s,
        Err(e) if std::env::var_os("CONTRA_REQUIRE_DATA").is_none() => {
            eprintln!("skipping: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    // (train, test, channels, length, classes)
    let want = [
        (50, 150, 1, 150, 2),
        (67, 1029, 1, 24, 2),
        (40, 40, 6, 100, 4),
    ];
    for ((train, test), w) in sets.iter().zip(want) {
        assert_eq!(
            (
                train.len(),
                test.len(),
                train.channels,
                train.lengths[0],
                train.class_names.len()
            ),
            w
        );
        assert!(train.lengths.iter().chain(&test.lengths).all(|&l| l == w.3));
        assert!(train.values.iter().flatten().all(|v| v.is_finite()));
        let labels = train.labels.as_ref().unwrap();
        assert!((0..w.4 as u32).all(|c| labels.contains(&c)));
    }
    // GunPoint's first training series: class 2, starting -0.6478854.
    let (gp, _) = &sets[0];
    assert_eq!(gp.class_names[gp.labels.as_ref().unwrap()[0] as usize], "2");
    assert_eq!(gp.values[0][0], -0.6478854);
    // BasicMotions: the classes in the order the file lists them.
    assert_eq!(
        sets[2].0.class_names,
        ["Standing", "Running", "Walking", "Badminton"]
    );
}

/// A real sensor stream: the UCR anomaly archive series aeon 1.6.0 ships
/// ($CONTRA_DATA/ucr/KDD-TSAD_135), a clean training prefix and a test part with one labelled
/// anomaly.
#[test]
fn real_anomaly_stream_reads_and_windows() {
    use contra::data::stream::{CsvColumns, read_csv_streams, windows};
    let dir = std::env::var_os("CONTRA_DATA")
        .map(|d| std::path::PathBuf::from(d).join("ucr/KDD-TSAD_135"))
        .filter(|d| d.is_dir());
    let Some(dir) = dir else {
        assert!(
            std::env::var_os("CONTRA_REQUIRE_DATA").is_none(),
            "$CONTRA_DATA/ucr/KDD-TSAD_135 not found"
        );
        eprintln!("skipping: $CONTRA_DATA/ucr/KDD-TSAD_135 not found");
        return;
    };
    let cols = CsvColumns {
        timestamp: Some("timestamp".into()),
        label: Some("is_anomaly".into()),
        ..Default::default()
    };
    let test = read_csv_streams(
        &dir.join("135_UCR_Anomaly_InternalBleeding16_TEST.csv"),
        &cols,
    )
    .unwrap();
    let train = read_csv_streams(
        &dir.join("135_UCR_Anomaly_InternalBleeding16_TRAIN.csv"),
        &cols,
    )
    .unwrap();
    assert_eq!((train.len(), test.len()), (1, 1));
    assert_eq!((train[0].len(), test[0].len()), (1200, 7501));
    assert_eq!(test[0].channel_names, ["value"]);
    assert_eq!(test[0].channels[0][0], 63.73215);
    let labels = test[0].labels.as_ref().unwrap();
    assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 12);
    assert_eq!(labels.iter().position(|&l| l == 1), Some(4187));
    assert!(train[0].labels.as_ref().unwrap().iter().all(|&l| l == 0));
    // Windows of 64 every 16 rows: those that overlap rows 4187..4199 are anomalous.
    let w = windows(&test, 64, 16).unwrap();
    assert_eq!(w.series.len(), (7501 - 64) / 16 + 1);
    let anomalous: Vec<usize> = w
        .origins
        .iter()
        .zip(w.series.labels.as_ref().unwrap())
        .filter(|(_, l)| **l == 1)
        .map(|(o, _)| o.1)
        .collect();
    assert!(
        anomalous.iter().all(|&s| s + 64 > 4187 && s < 4199),
        "{anomalous:?}"
    );
    // Starts 4128, 4144, 4160, 4176, 4192.
    assert_eq!(anomalous, vec![4128, 4144, 4160, 4176, 4192]);
}

/// all-MiniLM-L6-v2's tokenizer.json ($CONTRA_DATA/models, as `.ci/run` fetches it): BERT's
/// ids, contra's truncation at the recipe's length in place of the packaged 128, and padding
/// to the longest item of a batch.
#[test]
fn the_minilm_tokenizer_gives_berts_ids_truncates_and_pads_to_the_batch() {
    use contra::data::text::TextTokenizer;
    let Some(root) = std::env::var_os("CONTRA_DATA").map(std::path::PathBuf::from) else {
        assert!(std::env::var_os("CONTRA_REQUIRE_DATA").is_none());
        return;
    };
    let path = root.join("models/all-MiniLM-L6-v2/tokenizer.json");
    if !path.is_file() {
        assert!(
            std::env::var_os("CONTRA_REQUIRE_DATA").is_none(),
            "{} not found",
            path.display()
        );
        eprintln!("skipping: {} not found", path.display());
        return;
    }
    let t = TextTokenizer::from_file(&path, 256).unwrap();
    assert_eq!(t.vocab_size(), 30522);
    let b = t.encode(&["This is an example sentence"]).unwrap();
    assert_eq!(b.ids, [101, 2023, 2003, 2019, 2742, 6251, 102]);
    assert_eq!((b.rows, b.len), (1, 7));
    // Padded to the longest of the batch, the padding masked out.
    let b = t.encode(&["a dog", "Größe, café … 東京!", ""]).unwrap();
    assert_eq!(b.rows, 3);
    let row = |r: usize| &b.attention[r * b.len..(r + 1) * b.len];
    assert_eq!(row(0).iter().sum::<i64>(), 4);
    assert_eq!(
        row(2).iter().sum::<i64>(),
        2,
        "an empty text is [CLS] [SEP]"
    );
    assert!(row(1).iter().all(|&m| m == 1), "the longest is unpadded");
    assert_eq!(b.ids[b.len - 1], 0, "padding id");
    // Long texts stop at the recipe's length (past the packaged 128), [SEP] last.
    let long = "word ".repeat(400);
    for max in [16, 256] {
        let b = TextTokenizer::from_file(&path, max)
            .unwrap()
            .encode(&[&long])
            .unwrap();
        assert_eq!(b.len, max);
        assert_eq!(b.ids[max - 1], 102);
    }
}

#[test]
fn a_missing_or_broken_tokenizer_is_named() {
    use contra::data::text::TextTokenizer;
    let d = tmp("tokenizer");
    let missing = d.join("nope.json");
    let e = TextTokenizer::from_file(&missing, 256)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nope.json"), "{e}");
    let broken = d.join("tokenizer.json");
    std::fs::write(&broken, "{\"model\": 3}").unwrap();
    let e = TextTokenizer::from_file(&broken, 256)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("tokenizer.json") && e.contains("not a tokenizer"),
        "{e}"
    );
}

/// A labelled folder of `per_class` grey PNGs in each of `classes` (value: the class index).
fn class_folder(name: &str, classes: &[&str], per_class: usize) -> std::path::PathBuf {
    let d = tmp(name);
    for (c, class) in classes.iter().enumerate() {
        std::fs::create_dir_all(d.join(class)).unwrap();
        for i in 0..per_class {
            write_png(
                &d.join(format!("{class}/{i}.png")),
                2,
                2,
                png::ColorType::Grayscale,
                &[(c * 40 + i) as u8; 4],
            );
        }
    }
    d
}

fn folder_spec(path: &Path) -> contra::data::locate::FolderSpec {
    contra::data::locate::FolderSpec {
        path: path.to_path_buf(),
        channels: 1,
        image_size: 2,
        ..Default::default()
    }
}

/// A labelled folder without a test folder is split, stratified and seeded (no image is
/// evaluated on itself); `train_fraction = 1` evaluates on the training images and says so.
#[test]
fn a_folder_without_a_test_folder_is_split_by_class() {
    use contra::data::locate::{DataSpec, load_splits};
    let d = class_folder("folder-split", &["a", "b", "c", "d"], 20);
    let s = load_splits(&DataSpec::Folder(folder_spec(&d))).unwrap();
    assert_eq!((s.train.len, s.test.len), (64, 16));
    assert!(!s.test_is_train);
    for c in 0..4u32 {
        let count = |l: &Option<Vec<u32>>| l.as_ref().unwrap().iter().filter(|&&x| x == c).count();
        assert_eq!((count(&s.train.labels), count(&s.test.labels)), (16, 4));
    }
    // No test image is a training image (each image's value is unique).
    let train: std::collections::HashSet<u8> =
        (0..s.train.len).map(|i| s.train.image(i)[0]).collect();
    assert!((0..s.test.len).all(|i| !train.contains(&s.test.image(i)[0])));
    let again = load_splits(&DataSpec::Folder(folder_spec(&d))).unwrap();
    assert_eq!(again.test.pixels, s.test.pixels);
    let other = load_splits(&DataSpec::Folder(contra::data::locate::FolderSpec {
        split_seed: 1,
        ..folder_spec(&d)
    }))
    .unwrap();
    assert_ne!(other.test.pixels, s.test.pixels);
    let all = load_splits(&DataSpec::Folder(contra::data::locate::FolderSpec {
        train_fraction: Some(1.0),
        ..folder_spec(&d)
    }))
    .unwrap();
    assert!(all.test_is_train && all.test.len == 80);
}

/// Train and test folders share one class map: a class missing from the test folder shifts
/// no later label; hidden files (`.DS_Store`, macOS's `._x.png`) are not images.
#[test]
fn train_and_test_folders_share_one_class_map() {
    use contra::data::locate::{DataSpec, load_splits};
    let train = class_folder("folder-map-train", &["ant", "bee", "cat"], 2);
    let test = class_folder("folder-map-test", &["ant", "cat"], 2);
    std::fs::write(test.join("cat/._0.png"), b"\x00\x05\x16\x07 AppleDouble").unwrap();
    std::fs::write(test.join(".DS_Store"), b"junk").unwrap();
    std::fs::create_dir_all(test.join(".thumbnails")).unwrap();
    std::fs::write(test.join(".thumbnails/x.png"), b"junk").unwrap();
    let s = load_splits(&DataSpec::Folder(contra::data::locate::FolderSpec {
        test_path: Some(test.clone()),
        ..folder_spec(&train)
    }))
    .unwrap();
    assert_eq!(s.train.class_names, ["ant", "bee", "cat"]);
    assert_eq!(s.test.class_names, s.train.class_names);
    assert_eq!(s.test.labels.as_deref(), Some(&[0, 0, 2, 2][..]));
    // The third test image is the test folder's first cat (written with value 40).
    assert_eq!(s.test.image(2)[0], 40);
}

/// Every format the image crate writes here reads back to the same picture: PNG (8- and
/// 16-bit, grey, palette with transparency), JPEG, WebP (lossless), TIFF, BMP and GIF; a JPEG
/// whose EXIF orientation says "turn 90 degrees" is turned upright.
#[test]
fn image_files_of_every_format_decode_alike() {
    use image::{ImageFormat, Rgb, RgbImage};
    let d = tmp("formats");
    // 4x2: left half red, right half blue.
    let img = RgbImage::from_fn(4, 2, |x, _| {
        if x < 2 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    for (name, format, tolerance) in [
        ("a.png", ImageFormat::Png, 0.0),
        ("a.bmp", ImageFormat::Bmp, 0.0),
        ("a.tiff", ImageFormat::Tiff, 0.0),
        ("a.webp", ImageFormat::WebP, 0.0),
        ("a.gif", ImageFormat::Gif, 0.02),
        ("a.jpg", ImageFormat::Jpeg, 0.25),
    ] {
        let p = d.join(name);
        img.save_with_format(&p, format).unwrap();
        let got = folder::decode(&p).unwrap();
        assert_eq!((got.channels, got.height, got.width), (3, 2, 4), "{name}");
        let want = |c: usize, x: usize| match (c, x < 2) {
            (0, true) | (2, false) => 1.0,
            _ => 0.0,
        };
        for c in 0..3 {
            for y in 0..2 {
                for x in 0..4 {
                    let v = got.data[(c * 2 + y) * 4 + x];
                    assert!(
                        (v - want(c, x)).abs() <= tolerance,
                        "{name} c{c} y{y} x{x}: {v}"
                    );
                }
            }
        }
    }
    // 16-bit grey stays one channel, in [0, 1].
    let grey16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(2, 2, |x, _| {
        image::Luma([if x == 0 { 0 } else { 65535 }])
    });
    grey16
        .save_with_format(d.join("g16.png"), ImageFormat::Png)
        .unwrap();
    let g = folder::decode(&d.join("g16.png")).unwrap();
    assert_eq!((g.channels, g.data.clone()), (1, vec![0.0, 1.0, 0.0, 1.0]));
    // A palette PNG with a transparent entry: transparent pixels are white.
    let p = d.join("palette.png");
    let file = std::fs::File::create(&p).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 2, 1);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(vec![0, 0, 0, 0, 128, 0]);
    enc.set_trns(vec![0, 255]);
    enc.write_header()
        .unwrap()
        .write_image_data(&[0, 1])
        .unwrap();
    let pal = folder::decode(&p).unwrap();
    assert_eq!(pal.channels, 3);
    assert_eq!(
        [pal.data[0], pal.data[2], pal.data[4]],
        [1.0, 1.0, 1.0],
        "transparent is white"
    );
    assert!((pal.data[3] - 128.0 / 255.0).abs() < 1e-6 && pal.data[1] == 0.0);
    // EXIF orientation 6 (the camera was turned: rotate 90 degrees clockwise to view).
    let jpg = d.join("a.jpg");
    let plain = std::fs::read(&jpg).unwrap();
    let exif: Vec<u8> = [
        b"Exif\0\0".as_slice(),
        b"II*\0\x08\0\0\0", // little-endian TIFF header, first IFD at 8
        b"\x01\0",          // one entry
        b"\x12\x01\x03\0\x01\0\0\0\x06\0\0\0", // Orientation (0x0112), SHORT, 1, value 6
        b"\0\0\0\0",        // no next IFD
    ]
    .concat();
    let mut turned = plain[..2].to_vec();
    turned.extend_from_slice(&[0xFF, 0xE1]);
    turned.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    turned.extend_from_slice(&exif);
    turned.extend_from_slice(&plain[2..]);
    std::fs::write(d.join("turned.jpg"), turned).unwrap();
    let t = folder::decode(&d.join("turned.jpg")).unwrap();
    // 4x2 turned upright is 2 wide, 4 high: red on top, blue below.
    assert_eq!((t.height, t.width), (4, 2));
    assert!(t.data[0] > 0.7 && t.data[2 * 8 + 7] > 0.7, "{:?}", t.data);
}

/// A wide image: left third black, middle white, right third black (grey, `w = 3 * h`).
fn write_wide(path: &Path, h: u32) {
    let w = 3 * h;
    let data: Vec<u8> = (0..h * w)
        .map(|i| {
            if (h..2 * h).contains(&(i % w)) {
                255
            } else {
                0
            }
        })
        .collect();
    write_png(path, w, h, png::ColorType::Grayscale, &data);
}

/// By default the shorter side is scaled and the centre cut out (the white middle fills the
/// square); `resize = "squash"` keeps the whole width (black edges, white middle).
#[test]
fn folder_images_are_centre_cropped_unless_squashed() {
    let d = tmp("folder-fit");
    write_wide(&d.join("wide.png"), 8);
    let spec = |resize| contra::data::locate::FolderSpec {
        resize,
        train_fraction: Some(1.0),
        ..folder_spec(&d)
    };
    let cropped = load_splits(&DataSpec::Folder(spec(folder::Fit::Crop))).unwrap();
    assert_eq!((cropped.train.height, cropped.train.width), (2, 2));
    // (The antialiasing filter reaches a little into the black thirds: 223 of 255.)
    assert!(cropped.train.image(0).iter().all(|&v| v > 200));
    let squashed = load_splits(&DataSpec::Folder(spec(folder::Fit::Squash))).unwrap();
    let px = squashed.train.image(0).into_owned();
    assert!(px.iter().all(|&v| v < 255), "edges mixed in: {px:?}");
    // Antialiased: a 24-to-2 shrink averages the 4 columns each output pixel covers and
    // more, so no output pixel is pure black or pure white.
    assert!(px.iter().all(|&v| v > 0), "{px:?}");
    // A recipe says which.
    let f: DataSpec =
        toml::from_str("source = \"folder\"\npath = \"p\"\nresize = \"squash\"\nstream = true\n")
            .unwrap();
    let DataSpec::Folder(f) = f else { panic!() };
    assert_eq!((f.resize, f.stream), (folder::Fit::Squash, Some(true)));
}

/// A streamed folder keeps only its file list: its fitted images equal the in-memory
/// folder's, training views start from the full-size image (a random crop is cut before the
/// image shrinks), batches repeat exactly, and a file that breaks after the load stops
/// training with its name.
#[test]
fn a_streamed_folder_reads_images_when_used() {
    use contra::augment::loader::{BatchSource, ImageViews, LoaderConfig};
    use contra::augment::{Augmentation, Pipeline, RandomResizedCrop};
    let d = tmp("folder-stream");
    for class in ["a", "b"] {
        std::fs::create_dir_all(d.join(class)).unwrap();
        for i in 0..6u32 {
            write_wide(&d.join(format!("{class}/{i}.png")), 10 + i);
        }
    }
    let spec = |stream| contra::data::locate::FolderSpec {
        stream: Some(stream),
        image_size: 6,
        ..folder_spec(&d)
    };
    let memory = load_splits(&DataSpec::Folder(spec(false))).unwrap();
    let streamed = load_splits(&DataSpec::Folder(spec(true))).unwrap();
    assert!(streamed.train.is_streamed() && !memory.train.is_streamed());
    assert!(streamed.train.pixels.is_empty());
    assert_eq!(streamed.train.len, memory.train.len);
    assert_eq!(streamed.train.names, memory.train.names);
    assert_eq!(streamed.test.labels, memory.test.labels);
    for i in 0..streamed.train.len {
        assert_eq!(streamed.train.image(i), memory.train.image(i));
    }
    // Channel statistics agree (a streamed set this small is used whole).
    assert_eq!(
        contra::augment::channel_stats(&streamed.train),
        contra::augment::channel_stats(&memory.train)
    );
    // A crop covering the whole image: from the full-size wide image it keeps the black
    // edges that the centre-cropped in-memory image has lost.
    let whole = Pipeline::new(vec![Augmentation::RandomResizedCrop(RandomResizedCrop {
        size: 6,
        scale: [1.0, 1.0],
        ratio: [3.0, 3.0],
    })])
    .unwrap();
    let cfg = LoaderConfig {
        batch_size: 4,
        views: 2,
        workers: 2,
        prefetch: 1,
        seed: 3,
        per_class: 0,
    };
    let views = |data: &contra::data::ImageDataset| ImageViews {
        data: data.clone(),
        pipeline: whole.clone(),
    };
    let from_files = views(&streamed.train).make_batch(&cfg, 0, &[0, 1]).unwrap();
    let from_memory = views(&memory.train).make_batch(&cfg, 0, &[0, 1]).unwrap();
    assert_eq!(from_files.shape(), [2, 1, 6, 6]);
    assert!(from_files.views[0][..6].iter().any(|&v| v < 0.1));
    assert!(from_memory.views[0][..6].iter().all(|&v| v > 0.5));
    let again = views(&streamed.train).make_batch(&cfg, 0, &[0, 1]).unwrap();
    assert_eq!(from_files.views, again.views);
    // A file broken after the load: the batch that needs it fails with its name.
    let victim = d.join(&streamed.train.names[1]);
    std::fs::write(&victim, b"gone").unwrap();
    let e = views(&streamed.train)
        .make_batch(&cfg, 0, &[0, 1])
        .unwrap_err()
        .to_string();
    assert!(e.contains(&streamed.train.names[1]), "{e}");
    // The load checks every header: a broken file is named before any training.
    let e = load_splits(&DataSpec::Folder(spec(true)))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&streamed.train.names[1]), "{e}");
}

/// `train_labels = false`: the training windows' labels are read as 0 (normal), so neither
/// training nor the kNN neighbours learn from them; the test windows keep theirs.
#[test]
fn stream_training_labels_can_be_left_unread() {
    use contra::data::locate::{CsvSpec, load_series};
    let dir = tmp("train-labels");
    let mut text = String::from("t,v,label\n");
    for i in 0..80 {
        // An event in each half: rows 10-13 (training) and 60-63 (test).
        let event = (10..14).contains(&i) || (60..64).contains(&i);
        text += &format!("{i},{},{}\n", (i as f32 * 0.3).sin(), event as u8);
    }
    let path = dir.join("s.csv");
    std::fs::write(&path, text).unwrap();
    let spec = |train_labels| {
        DataSpec::Csv(CsvSpec {
            path: path.clone(),
            columns: toml::from_str("timestamp = \"t\"\nvalues = [\"v\"]\nlabel = \"label\"")
                .unwrap(),
            window: 8,
            stride: Some(4),
            train_fraction: Some(0.5),
            train_labels,
            ..Default::default()
        })
    };
    let events =
        |labels: &Option<Vec<u32>>| labels.as_ref().unwrap().iter().filter(|&&l| l > 0).count();
    let read = load_series(&spec(None)).unwrap();
    let unread = load_series(&spec(Some(false))).unwrap();
    // Windows of 8 every 4 rows over rows 0-39: those starting at 4, 8 and 12 hold rows 10-13.
    assert_eq!(events(&read.train.labels), 3);
    assert_eq!(events(&unread.train.labels), 0);
    assert_eq!(unread.train.len(), read.train.len());
    assert_eq!(unread.train.values, read.train.values);
    // Over rows 40-79, the windows starting at 56 and 60 hold rows 60-63.
    assert_eq!(events(&unread.test.labels), 2);
    assert_eq!(unread.test.labels, read.test.labels);
    let recipe = "[data]\nsource = \"csv\"\npath = \"s.csv\"\nwindow = 8\ntrain_labels = \"no\"\n";
    let err = contra::recipe::Recipe::parse(recipe, Path::new("r.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("r.toml") && err.contains("expected a boolean"),
        "{err}"
    );
}
