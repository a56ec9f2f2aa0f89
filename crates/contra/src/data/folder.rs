//! Folders of images (PNG, JPEG, WebP, TIFF, BMP, GIF), searched recursively.
//!
//! When the root holds sub-folders, the first path component under the root is the class
//! (class names sorted, as torchvision's `ImageFolder` does); images directly in the root with
//! no sub-folders give an unlabeled set. Every image is converted to the requested number of
//! channels and resized to the requested size.

use super::ImageDataset;
use crate::error::{Error, Result};
use crate::image::Image;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How an image of another shape is brought to the set's square size (`data.resize`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    /// The shorter side scaled to the size, then the centre cut out (torchvision's
    /// `Resize(size)` + `CenterCrop(size)`): shapes are kept, the edges of long sides lost.
    #[default]
    Crop,
    /// The whole image scaled to the size, its aspect ratio changed.
    Squash,
}

impl Fit {
    /// `img` brought to `height x width`.
    pub fn apply(self, img: Image, height: usize, width: usize) -> Image {
        if (img.height, img.width) == (height, width) {
            return img;
        }
        match self {
            Fit::Crop if height == width => img.resize_shorter_and_crop(height),
            _ => img.resize(height, width),
        }
    }
}

/// The files of images that are read when used rather than held in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFiles {
    pub paths: Vec<PathBuf>,
}

impl ImageFiles {
    /// Image `i` decoded at its full size, in `channels` channels.
    pub fn read(&self, i: usize, channels: usize) -> Result<Image> {
        Ok(decode(&self.paths[i])?.to_channels(channels))
    }

    /// The files at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            paths: indices.iter().map(|&i| self.paths[i].clone()).collect(),
        }
    }
}

/// How a folder is read: the size and channels its images are brought to, and how.
#[derive(Clone, Debug)]
pub struct FolderRead<'a> {
    pub channels: usize,
    pub size: usize,
    pub fit: Fit,
    /// Label by these classes (a training and a test folder share one class map, so that a
    /// class missing from one shifts no label of the other); by the folder's own otherwise.
    pub classes: Option<&'a [String]>,
    /// Leave out files that do not decode, their count and first names printed.
    pub skip_unreadable: bool,
    /// Keep only the file list and read each image when used (a folder larger than
    /// memory); each file's header is checked here.
    pub stream: bool,
}

impl FolderRead<'_> {
    /// Images of `channels` channels brought to `size x size` by `fit`, held in memory.
    pub fn new(channels: usize, size: usize) -> Self {
        Self {
            channels,
            size,
            fit: Fit::Crop,
            classes: None,
            skip_unreadable: false,
            stream: false,
        }
    }
}

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

/// Load every image under `root`, converted to `channels` (1 or 3) and brought to
/// `size x size` by a centre crop; classes are its own sub-folders, sorted.
pub fn read_folder(root: &Path, channels: usize, size: usize) -> Result<ImageDataset> {
    read(root, &FolderRead::new(channels, size))
}

/// Whether `path` starts like an image of a known format with a size: its header only.
fn check_header(path: &Path) -> Result<()> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(Error::format(
            path,
            "not an image in a known format (PNG, JPEG, WebP, TIFF, BMP or GIF)",
        ));
    }
    match reader.into_dimensions() {
        Ok((w, h)) if w > 0 && h > 0 => Ok(()),
        Ok(_) => Err(Error::format(path, "an image of no pixels")),
        Err(e) => Err(Error::format(
            path,
            format!("corrupt or truncated image: {e}"),
        )),
    }
}

/// Read the images under `root` as `how` says: decoded, fitted and held in memory, or (with
/// `how.stream`) their headers checked and their files kept to read when used.
pub fn read(root: &Path, how: &FolderRead) -> Result<ImageDataset> {
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
    let class_names: Vec<String> = match how.classes {
        Some(c) => c.to_vec(),
        None => classes_of(root, &files),
    };
    let (channels, size) = (how.channels, how.size);
    let each = channels * size * size;
    // Each image is decoded straight into its place: no second copy of the folder.
    let mut pixels = vec![0u8; if how.stream { 0 } else { files.len() * each }];
    let checked: Vec<Result<()>> = {
        use rayon::prelude::*;
        if how.stream {
            files.par_iter().map(|p| check_header(p)).collect()
        } else {
            pixels
                .par_chunks_mut(each)
                .zip(files.par_iter())
                .map(|(dst, p)| {
                    let img = how.fit.apply(decode(p)?.to_channels(channels), size, size);
                    dst.copy_from_slice(&img.to_bytes());
                    Ok(())
                })
                .collect()
        }
    };
    let mut labels = Vec::with_capacity(files.len());
    let mut kept = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for (i, (p, d)) in files.iter().zip(checked).enumerate() {
        match d {
            Ok(()) if !how.stream => {
                // Close the gaps that skipped files left.
                let to = kept.len() * each;
                pixels.copy_within(i * each..(i + 1) * each, to);
            }
            Ok(()) => {}
            Err(e) if how.skip_unreadable => {
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
    pixels.truncate(if how.stream { 0 } else { kept.len() * each });
    let labels = labelled.then_some(labels);
    let names = kept
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut set = if how.stream {
        ImageDataset::streamed(ImageFiles { paths: kept }, channels, size, size, labels)
    } else {
        ImageDataset::new(pixels, channels, size, size, labels)?
    };
    set.class_names = class_names;
    set.names = names;
    set.fit = how.fit;
    Ok(set)
}
