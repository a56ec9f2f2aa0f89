//! Folders of images (PNG, JPEG, WebP, TIFF, BMP, GIF), searched recursively.
//!
//! When the root holds sub-folders, the first path component under the root is the class
//! (class names sorted, as torchvision's `ImageFolder` does); images directly in the root with
//! no sub-folders give an unlabeled set. Every image is converted to the requested number of
//! channels and resized to the requested size.

use super::ImageDataset;
use crate::error::{Error, Result};
use crate::image::Image;
use std::path::{Path, PathBuf};

/// Hidden files and folders (`.DS_Store`, macOS's `._photo.jpg`, `.git`) are never data.
fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn is_image(p: &Path) -> bool {
    !is_hidden(p)
        && matches!(
            p.extension()
                .and_then(|e| e.to_str())
                .map(|e| e.to_ascii_lowercase())
                .as_deref(),
            Some("png" | "jpg" | "jpeg" | "webp" | "tif" | "tiff" | "bmp" | "gif")
        )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(dir, err)))
        .collect::<Result<_>>()?;
    entries.sort();
    for p in entries {
        if is_hidden(&p) {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if is_image(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The formats [`decode`] reads, by the names its errors use.
fn format_name(f: image::ImageFormat) -> &'static str {
    use image::ImageFormat as F;
    match f {
        F::Png => "PNG",
        F::Jpeg => "JPEG",
        F::WebP => "WebP",
        F::Tiff => "TIFF",
        F::Bmp => "BMP",
        F::Gif => "GIF",
        _ => "image",
    }
}

/// Decode an image file (PNG, JPEG, WebP, TIFF, BMP or GIF, by its content; palette, 16-bit
/// and alpha alike) into an image with values in [0, 1]: grey stays one channel, colour is
/// RGB, alpha is composited onto white, and a JPEG or TIFF turned by its EXIF orientation is
/// turned upright.
pub fn decode(path: &Path) -> Result<Image> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let Some(format) = reader.format() else {
        return Err(Error::format(
            path,
            "not an image in a known format (PNG, JPEG, WebP, TIFF, BMP or GIF)",
        ));
    };
    let name = format_name(format);
    let corrupt = |e: image::ImageError| {
        Error::format(
            path,
            format!("corrupt, truncated or unsupported {name}: {e}"),
        )
    };
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let orientation = image::ImageDecoder::orientation(&mut decoder)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let colour = img.color();
    let grey = colour.channel_count() <= 2;
    let (values, channels): (Vec<f32>, usize) = match (grey, colour.has_alpha()) {
        (true, false) => (img.to_luma32f().into_raw(), 1),
        (true, true) => (img.to_luma_alpha32f().into_raw(), 2),
        (false, false) => (img.to_rgb32f().into_raw(), 3),
        (false, true) => (img.to_rgba32f().into_raw(), 4),
    };
    Ok(interleaved_to_image(&values, channels, h, w))
}

/// HWC values in [0, 1] with 1-4 channels to a CHW image of 1 or 3 channels; an alpha channel
/// (grey-alpha and RGBA, palette transparency expanded) is composited onto white, so that a
/// transparent background is white whatever colour its hidden pixels hold.
fn interleaved_to_image(buf: &[f32], src_channels: usize, h: usize, w: usize) -> Image {
    let colour = src_channels >= 3;
    let c = if colour { 3 } else { 1 };
    let alpha = src_channels == 2 || src_channels == 4;
    let mut img = Image::zeros(c, h, w);
    for y in 0..h {
        for x in 0..w {
            let px = &buf[(y * w + x) * src_channels..];
            let a = if alpha { px[src_channels - 1] } else { 1.0 };
            for (ch, &v) in px[..c].iter().enumerate() {
                img.data[(ch * h + y) * w + x] = v * a + (1.0 - a);
            }
        }
    }
    img
}

/// How many images lie under `root`, and its class sub-folders (sorted; empty when the
/// images lie in the root).
pub fn survey(root: &Path) -> Result<(usize, Vec<String>)> {
    if !root.is_dir() {
        return Err(Error::format(root, "not a folder"));
    }
    let mut files = Vec::new();
    walk(root, &mut files)?;
    Ok((files.len(), classes_of(root, &files)))
}

/// The class sub-folders of `root` that hold images, sorted.
pub fn class_names(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if root.is_dir() {
        walk(root, &mut files)?;
    }
    Ok(classes_of(root, &files))
}

/// The classes of `files` under `root`, sorted and each once.
fn classes_of(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = files.iter().filter_map(|p| class_of(root, p)).collect();
    names.sort();
    names.dedup();
    names
}

/// The class of an image: the first folder under the root, if it lies in one.
fn class_of(root: &Path, p: &Path) -> Option<String> {
    let rel = p.strip_prefix(root).ok()?;
    let mut comps = rel.components();
    let first = comps.next()?;
    comps
        .next()
        .map(|_| first.as_os_str().to_string_lossy().into_owned())
}

/// Load every image under `root`, converted to `channels` (1 or 3) and resized to
/// `height x width`; classes are its own sub-folders, sorted.
pub fn read_folder(
    root: &Path,
    channels: usize,
    height: usize,
    width: usize,
) -> Result<ImageDataset> {
    read_folder_classes(root, channels, height, width, None, false)
}

/// As [`read_folder`], labelling by `classes` when given (a training and a test folder share
/// one class map, so a class missing from one shifts no label of the other); with
/// `skip_unreadable`, files that do not decode are left out, their count and first names
/// printed, instead of stopping the load.
pub fn read_folder_classes(
    root: &Path,
    channels: usize,
    height: usize,
    width: usize,
    classes: Option<&[String]>,
    skip_unreadable: bool,
) -> Result<ImageDataset> {
    if !root.is_dir() {
        return Err(Error::format(
            root,
            "image folder does not exist or is not a directory",
        ));
    }
    let mut files = Vec::new();
    walk(root, &mut files)?;
    if files.is_empty() {
        return Err(Error::format(
            root,
            "no images (PNG, JPEG, WebP, TIFF, BMP, GIF) found in this folder or below it",
        ));
    }
    let class_of = |p: &Path| class_of(root, p);
    let labelled = files.iter().any(|p| class_of(p).is_some());
    let class_names: Vec<String> = match classes {
        Some(c) => c.to_vec(),
        None => classes_of(root, &files),
    };
    let decoded: Vec<Result<Vec<u8>>> = {
        use rayon::prelude::*;
        files
            .par_iter()
            .map(|p| {
                let img = decode(p)?.to_channels(channels).resize(height, width);
                Ok(img.to_bytes())
            })
            .collect()
    };
    let mut pixels = Vec::with_capacity(files.len() * channels * height * width);
    let mut labels = Vec::with_capacity(files.len());
    let mut kept = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for (p, d) in files.iter().zip(decoded) {
        match d {
            Ok(bytes) => pixels.extend_from_slice(&bytes),
            Err(e) if skip_unreadable => {
                skipped.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        }
        kept.push(p.clone());
        if labelled {
            let c = class_of(p).ok_or_else(|| {
                Error::format(p, "image lies directly in the root of a labelled folder; put it in a class sub-folder")
            })?;
            let label = class_names.iter().position(|n| *n == c).ok_or_else(|| {
                Error::format(p, format!("class `{c}` is not among {class_names:?}"))
            })?;
            labels.push(label as u32);
        }
    }
    if !skipped.is_empty() {
        eprintln!(
            "{}: skipped {} unreadable file(s): {}",
            root.display(),
            skipped.len(),
            skipped[..skipped.len().min(3)].join("; ")
        );
    }
    if kept.is_empty() {
        return Err(Error::format(root, "no readable image in this folder"));
    }
    let mut set = ImageDataset::new(pixels, channels, height, width, labelled.then_some(labels))?;
    set.class_names = class_names;
    set.names = kept
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Ok(set)
}
