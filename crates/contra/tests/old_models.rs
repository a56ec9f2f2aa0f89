//! Model files written by earlier versions of contra still load, and embed as they did.
//!
//! `fixtures/old-models/` holds one small model file per method kind, written before recipes
//! were typed: their stored recipes carry every method field whatever the kind, as contra
//! wrote them then. `expected.json` holds each model's embedding of fixed inputs, recorded
//! when the files were written (`CONTRA_RECORD=1` writes it anew).

use burn::prelude::*;
use contra::data::series::SeriesDataset;
use contra::methods::Method;
use contra::train::TrainedFile;
use contra::train::series::SeriesModel;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old-models")
}

/// Four 8x8 single-channel images.
fn images(device: &Device) -> Tensor<4> {
    let data: Vec<f32> = (0..4 * 64).map(|i| (i as f32 * 0.37).sin()).collect();
    Tensor::<1>::from_floats(data.as_slice(), device).reshape([4, 1, 8, 8])
}

/// Three series of two channels, 32 steps.
fn series() -> SeriesDataset {
    SeriesDataset {
        channels: 2,
        values: (0..3)
            .map(|i| {
                (0..64)
                    .map(|t| ((i * 64 + t) as f32 * 0.21).cos())
                    .collect()
            })
            .collect(),
        lengths: vec![32; 3],
        labels: None,
        class_names: vec![],
    }
}

/// The embedding of the fixed inputs by the model in `path`.
fn embedding(path: &Path) -> Vec<f32> {
    let device = contra::device::parse("cpu").unwrap();
    let file = TrainedFile::read(path).unwrap_or_else(|e| panic!("{e}"));
    if file.recipe.data.is_series() {
        let model = SeriesModel::read(&file, 2, &device).unwrap_or_else(|e| panic!("{e}"));
        model.embed(&series(), 32, &device).data
    } else {
        let model = file.model(1, &device).unwrap_or_else(|e| panic!("{e}"));
        contra::tensor_util::to_vec(model.encoder().forward(images(&device)))
    }
}

#[test]
fn model_files_of_every_method_kind_load_and_embed_as_before() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".safetensors").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    let got: BTreeMap<String, Vec<f32>> = names
        .iter()
        .map(|n| {
            (
                n.clone(),
                embedding(&fixtures().join(format!("{n}.safetensors"))),
            )
        })
        .collect();
    let expected_path = fixtures().join("expected.json");
    if std::env::var_os("CONTRA_RECORD").is_some() {
        std::fs::write(&expected_path, serde_json::to_string(&got).unwrap()).unwrap();
    }
    let expected: BTreeMap<String, Vec<f32>> =
        serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, values) in &got {
        let want = &expected[name];
        assert_eq!(values.len(), want.len(), "{name}");
        for (a, b) in values.iter().zip(want) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{name}: {a} vs {b}"
            );
        }
    }
}
