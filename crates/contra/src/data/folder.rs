//! Folders of PNG and JPEG images, searched recursively.
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
            Some("png" | "jpg" | "jpeg")
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

/// Decode a PNG or JPEG file into an image with values in [0, 1] and its own channel count.
pub fn decode(path: &Path) -> Result<Image> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        decode_png(path, &bytes)
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(path, &bytes)
    } else {
        Err(Error::format(
            path,
            "not a PNG or JPEG file (unknown signature)",
        ))
    }
}

fn decode_png(path: &Path, bytes: &[u8]) -> Result<Image> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| Error::format(path, format!("corrupt PNG: {e}")))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::format(path, "PNG image is too large"))?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| Error::format(path, format!("corrupt or truncated PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let src_channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(Error::format(path, "indexed PNG was not expanded")),
    };
    Ok(interleaved_to_image(
        &buf[..w * h * src_channels],
        src_channels,
        h,
        w,
    ))
}

fn decode_jpeg(path: &Path, bytes: &[u8]) -> Result<Image> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    let pixels = decoder
        .decode()
        .map_err(|e| Error::format(path, format!("corrupt or truncated JPEG: {e}")))?;
    let info = decoder
        .info()
        .ok_or_else(|| Error::format(path, "JPEG without image information"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let src_channels = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        jpeg_decoder::PixelFormat::CMYK32 => 4,
        jpeg_decoder::PixelFormat::L16 => {
            return Err(Error::format(path, "16-bit JPEG is not supported"));
        }
    };
    if pixels.len() < w * h * src_channels {
        return Err(Error::format(
            path,
            "JPEG data shorter than its declared size",
        ));
    }
    if src_channels == 4 {
        // CMYK (as decoded, not inverted) to RGB.
        let mut rgb = Vec::with_capacity(w * h * 3);
        for px in pixels.chunks_exact(4) {
            let k = px[3] as f32 / 255.0;
            for &c in &px[..3] {
                rgb.push(((255.0 - c as f32) * (1.0 - k)).round().clamp(0.0, 255.0) as u8);
            }
        }
        return Ok(interleaved_to_image(&rgb, 3, h, w));
    }
    Ok(interleaved_to_image(&pixels, src_channels, h, w))
}

/// HWC bytes with 1-4 channels to a CHW image of 1 or 3 channels; an alpha channel (PNG's
/// grey-alpha and RGBA, palette transparency expanded) is composited onto white, so that a
/// transparent background is white whatever colour its hidden pixels hold.
fn interleaved_to_image(buf: &[u8], src_channels: usize, h: usize, w: usize) -> Image {
    let colour = src_channels >= 3;
    let c = if colour { 3 } else { 1 };
    let alpha = src_channels == 2 || src_channels == 4;
    let mut img = Image::zeros(c, h, w);
    for y in 0..h {
        for x in 0..w {
            let px = &buf[(y * w + x) * src_channels..];
            let a = if alpha {
                px[src_channels - 1] as f32 / 255.0
            } else {
                1.0
            };
            for (ch, &v) in px[..c].iter().enumerate() {
                img.data[(ch * h + y) * w + x] = v as f32 / 255.0 * a + (1.0 - a);
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
    Ok((files.len(), class_names(root)?))
}

/// The class sub-folders of `root` that hold images, sorted.
pub fn class_names(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if root.is_dir() {
        walk(root, &mut files)?;
    }
    let mut names: Vec<String> = files.iter().filter_map(|p| class_of(root, p)).collect();
    names.sort();
    names.dedup();
    Ok(names)
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
    read_folder_classes(root, channels, height, width, None)
}

/// As [`read_folder`], labelling by `classes` when given (a training and a test folder share
/// one class map, so a class missing from one shifts no label of the other).
pub fn read_folder_classes(
    root: &Path,
    channels: usize,
    height: usize,
    width: usize,
    classes: Option<&[String]>,
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
            "no PNG or JPEG images found in this folder or below it",
        ));
    }
    let class_of = |p: &Path| class_of(root, p);
    let labelled = files.iter().any(|p| class_of(p).is_some());
    let class_names: Vec<String> = match classes {
        Some(c) => c.to_vec(),
        None => {
            let mut names: Vec<String> = files.iter().filter_map(|p| class_of(p)).collect();
            names.sort();
            names.dedup();
            names
        }
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
    for (p, d) in files.iter().zip(decoded) {
        pixels.extend_from_slice(&d?);
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
    let mut set = ImageDataset::new(pixels, channels, height, width, labelled.then_some(labels))?;
    set.class_names = class_names;
    set.names = files
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
