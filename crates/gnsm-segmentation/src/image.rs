//! (image, label mask) pairs for the segmentation case study: the common folder layout
//! (`images/NAME.png|jpg` + `labels/NAME.png`, CamVid as shipped in `../shared/data/camvid`)
//! and Pascal VOC (`JPEGImages/NAME.jpg` + palette `SegmentationClass/NAME.png`, 255 = void).
//!
//! Labels are read as raw 8-bit sample values — a grayscale value or a palette index — so a
//! VOC palette PNG yields class indices directly, without its colours.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SegmentationError;

/// One image and its label mask, both `height × width`.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationPair {
    /// File stem shared by image and label.
    pub name: String,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// RGB in [0, 1], channel-major (`3 × height × width`), as a conv network reads it.
    pub image: Vec<f32>,
    /// Class index per pixel, row-major; the set's `void` value marks ignored pixels.
    pub mask: Vec<u8>,
}

/// Where and how a set of pairs is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentationLayout {
    /// Folder of the images (`.png`, `.jpg` or `.jpeg`).
    pub images: PathBuf,
    /// Folder of the label PNGs (8-bit grayscale or palette), named as the images.
    pub labels: PathBuf,
    /// Only these names (file stems), in this order; `None`: every label file, sorted.
    pub names: Option<Vec<String>>,
    /// Number of classes; label values `>= classes` other than `void` are an error.
    pub classes: usize,
    /// The label value of ignored pixels.
    pub void: u8,
    /// Resize every pair to `(height, width)`: images bilinearly, labels by nearest
    /// neighbour. `None` keeps the stored size (then all pairs must share it).
    pub resize: Option<(usize, usize)>,
}

impl SegmentationLayout {
    /// The folder layout of `root/{images,labels}` (the shipped CamVid split folders:
    /// 11 classes, void 11).
    pub fn folders(root: impl AsRef<Path>, classes: usize, void: u8) -> Self {
        let root = root.as_ref();
        Self {
            images: root.join("images"),
            labels: root.join("labels"),
            names: None,
            classes,
            void,
            resize: None,
        }
    }

    /// Pascal VOC 2012 under `root` (the `VOC2012` folder): the names listed in
    /// `ImageSets/Segmentation/{split}.txt`, 21 classes, void 255.
    ///
    /// # Errors
    /// [`SegmentationError::Io`] when the split list cannot be read.
    pub fn voc(root: impl AsRef<Path>, split: &str) -> Result<Self, SegmentationError> {
        let root = root.as_ref();
        let list = root
            .join("ImageSets/Segmentation")
            .join(format!("{split}.txt"));
        let text = std::fs::read_to_string(&list).map_err(|source| SegmentationError::Io {
            path: list.display().to_string(),
            source,
        })?;
        Ok(Self {
            images: root.join("JPEGImages"),
            labels: root.join("SegmentationClass"),
            names: Some(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            classes: 21,
            void: 255,
            resize: None,
        })
    }

    /// Resize every pair to `height × width`.
    pub fn resized(mut self, height: usize, width: usize) -> Self {
        self.resize = Some((height, width));
        self
    }

    /// The names this layout reads.
    ///
    /// # Errors
    /// [`SegmentationError::Io`] when the label folder cannot be listed.
    pub fn names(&self) -> Result<Vec<String>, SegmentationError> {
        if let Some(names) = &self.names {
            return Ok(names.clone());
        }
        let entries = std::fs::read_dir(&self.labels).map_err(|source| SegmentationError::Io {
            path: self.labels.display().to_string(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Read every pair.
    ///
    /// # Errors
    /// [`SegmentationError::Image`] for a missing image, an unreadable or unsupported file, an image
    /// and label of different sizes, a label value outside the classes, or pairs of
    /// different sizes without `resize`; [`SegmentationError::Io`] when a folder cannot be listed.
    pub fn read(&self) -> Result<Vec<SegmentationPair>, SegmentationError> {
        let names = self.names()?;
        let mut pairs: Vec<SegmentationPair> = Vec::with_capacity(names.len());
        for name in names {
            let pair = self.read_pair(&name)?;
            if let Some(first) = pairs.first() {
                if (first.height, first.width) != (pair.height, pair.width) {
                    return Err(image_error(
                        &self.labels.join(format!("{name}.png")),
                        format!(
                            "{}×{} differs from {}×{} of {}; set `resize`",
                            pair.height, pair.width, first.height, first.width, first.name
                        ),
                    ));
                }
            }
            pairs.push(pair);
        }
        Ok(pairs)
    }

    fn image_path(&self, name: &str) -> Result<PathBuf, SegmentationError> {
        ["png", "jpg", "jpeg", "PNG", "JPG", "JPEG"]
            .iter()
            .map(|ext| self.images.join(format!("{name}.{ext}")))
            .find(|p| p.exists())
            .ok_or_else(|| {
                image_error(
                    &self.images.join(name),
                    "no image with this name (.png, .jpg or .jpeg)".into(),
                )
            })
    }

    /// Read one pair by name.
    ///
    /// # Errors
    /// As [`SegmentationLayout::read`].
    pub fn read_pair(&self, name: &str) -> Result<SegmentationPair, SegmentationError> {
        let image_path = self.image_path(name)?;
        let label_path = self.labels.join(format!("{name}.png"));
        let (ih, iw, rgb) = read_rgb(&image_path)?;
        let (lh, lw, mut mask) = read_label_png(&label_path)?;
        if (ih, iw) != (lh, lw) {
            return Err(image_error(
                &label_path,
                format!(
                    "label is {lh}×{lw} but its image {} is {ih}×{iw}",
                    image_path.display()
                ),
            ));
        }
        if let Some((pixel, &value)) = mask
            .iter()
            .enumerate()
            .find(|(_, &v)| v != self.void && usize::from(v) >= self.classes)
        {
            return Err(image_error(
                &label_path,
                format!(
                    "value {value} at row {}, column {} is neither a class (0..{}) nor void ({})",
                    pixel / lw,
                    pixel % lw,
                    self.classes,
                    self.void
                ),
            ));
        }
        let (height, width, image) = match self.resize {
            Some((h, w)) if (h, w) != (ih, iw) => {
                mask = resize_nearest(&mask, lh, lw, h, w);
                (h, w, resize_bilinear(&rgb, 3, ih, iw, h, w))
            }
            _ => (ih, iw, rgb),
        };
        Ok(SegmentationPair {
            name: name.into(),
            height,
            width,
            image,
            mask,
        })
    }
}

fn image_error(path: &Path, reason: String) -> SegmentationError {
    SegmentationError::Image {
        path: path.display().to_string(),
        reason,
    }
}

fn open(path: &Path) -> Result<BufReader<File>, SegmentationError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| SegmentationError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Decode a PNG without palette expansion: (height, width, channels, 8-bit samples).
fn decode_png(path: &Path) -> Result<(usize, usize, png::ColorType, Vec<u8>), SegmentationError> {
    let mut decoder = png::Decoder::new(open(path)?);
    decoder.set_transformations(png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| image_error(path, format!("not a readable PNG: {e}")))?;
    let mut buf = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| image_error(path, "image too large".into()))?
    ];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| image_error(path, format!("corrupt PNG data: {e}")))?;
    if info.bit_depth != png::BitDepth::Eight {
        return Err(image_error(
            path,
            format!(
                "{:?}-bit samples; only 8-bit PNGs are supported",
                info.bit_depth
            ),
        ));
    }
    buf.truncate(info.buffer_size());
    Ok((
        info.height as usize,
        info.width as usize,
        info.color_type,
        buf,
    ))
}

/// An RGB image as channel-major floats in [0, 1].
fn read_rgb(path: &Path) -> Result<(usize, usize, Vec<f32>), SegmentationError> {
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let (h, w, channels, bytes) = if is_png {
        let (h, w, color, bytes) = decode_png(path)?;
        let channels = match color {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Indexed => {
                return Err(image_error(
                    path,
                    "palette image; save images as RGB or grayscale".into(),
                ))
            }
        };
        (h, w, channels, bytes)
    } else {
        let mut decoder = jpeg_decoder::Decoder::new(open(path)?);
        let bytes = decoder
            .decode()
            .map_err(|e| image_error(path, format!("not a readable JPEG: {e}")))?;
        let info = decoder
            .info()
            .ok_or_else(|| image_error(path, "JPEG without a header".into()))?;
        let channels = match info.pixel_format {
            jpeg_decoder::PixelFormat::RGB24 => 3,
            jpeg_decoder::PixelFormat::L8 => 1,
            other => {
                return Err(image_error(
                    path,
                    format!("JPEG pixel format {other:?} is not supported"),
                ))
            }
        };
        (
            usize::from(info.height),
            usize::from(info.width),
            channels,
            bytes,
        )
    };
    let plane = h * w;
    let mut out = vec![0.0f32; 3 * plane];
    for p in 0..plane {
        for c in 0..3 {
            // Grayscale fills all three channels; alpha is dropped.
            let source = if channels < 3 { 0 } else { c };
            out[c * plane + p] = f32::from(bytes[p * channels + source]) / 255.0;
        }
    }
    Ok((h, w, out))
}

/// A label PNG's raw 8-bit values (grayscale value or palette index): (height, width,
/// row-major values).
///
/// # Errors
/// [`SegmentationError::Io`] / [`SegmentationError::Image`] for a missing, corrupt or non-label PNG.
pub fn read_label_png(path: &Path) -> Result<(usize, usize, Vec<u8>), SegmentationError> {
    let (h, w, color, bytes) = decode_png(path)?;
    match color {
        png::ColorType::Grayscale | png::ColorType::Indexed => Ok((h, w, bytes)),
        other => Err(image_error(
            path,
            format!(
                "{other:?} label; labels must be 8-bit grayscale or palette PNGs holding class \
                 indices"
            ),
        )),
    }
}

/// Nearest-neighbour resize of a row-major mask (pixel centres aligned).
pub fn resize_nearest(mask: &[u8], h: usize, w: usize, nh: usize, nw: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nh * nw);
    for y in 0..nh {
        let sy = (((y as f64 + 0.5) * h as f64 / nh as f64) as usize).min(h - 1);
        for x in 0..nw {
            let sx = (((x as f64 + 0.5) * w as f64 / nw as f64) as usize).min(w - 1);
            out.push(mask[sy * w + sx]);
        }
    }
    out
}

/// Bilinear resize of channel-major planes (pixel centres aligned, edges clamped).
pub fn resize_bilinear(
    planes: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    nh: usize,
    nw: usize,
) -> Vec<f32> {
    let coord = |i: usize, n: usize, size: usize| {
        let s = ((i as f64 + 0.5) * size as f64 / n as f64 - 0.5).clamp(0.0, (size - 1) as f64);
        let lo = s.floor() as usize;
        (lo, (lo + 1).min(size - 1), (s - lo as f64) as f32)
    };
    let mut out = vec![0.0f32; channels * nh * nw];
    for c in 0..channels {
        let src = &planes[c * h * w..(c + 1) * h * w];
        for y in 0..nh {
            let (y0, y1, fy) = coord(y, nh, h);
            for x in 0..nw {
                let (x0, x1, fx) = coord(x, nw, w);
                let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
                let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
                out[c * nh * nw + y * nw + x] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
    out
}

/// Write a label mask as an 8-bit palette PNG (index = class, so it reads back as the same
/// values), atomically. `palette` holds RGB triples for the first classes; other indices are
/// black.
///
/// # Errors
/// [`SegmentationError::Io`] / [`SegmentationError::Image`] when the file cannot be written.
pub fn write_label_png(
    path: impl AsRef<Path>,
    mask: &[u8],
    height: usize,
    width: usize,
    palette: &[[u8; 3]],
) -> Result<(), SegmentationError> {
    let mut full = vec![0u8; 256 * 3];
    for (i, rgb) in palette.iter().take(256).enumerate() {
        full[i * 3..i * 3 + 3].copy_from_slice(rgb);
    }
    encode_png(
        path.as_ref(),
        width,
        height,
        png::ColorType::Indexed,
        Some(full),
        mask,
    )
}

/// Write an 8-bit RGB image (row-major, interleaved) as a PNG, atomically.
///
/// # Errors
/// [`SegmentationError::Io`] / [`SegmentationError::Image`] when the file cannot be written.
pub fn write_rgb_png(
    path: impl AsRef<Path>,
    rgb: &[u8],
    height: usize,
    width: usize,
) -> Result<(), SegmentationError> {
    encode_png(path.as_ref(), width, height, png::ColorType::Rgb, None, rgb)
}

fn encode_png(
    path: &Path,
    width: usize,
    height: usize,
    color: png::ColorType,
    palette: Option<Vec<u8>>,
    data: &[u8],
) -> Result<(), SegmentationError> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        if let Some(p) = palette {
            encoder.set_palette(p);
        }
        let mut writer = encoder
            .write_header()
            .map_err(|e| image_error(path, e.to_string()))?;
        writer
            .write_image_data(data)
            .map_err(|e| image_error(path, e.to_string()))?;
    }
    Ok(gnsm_data::OutputFile::write_bytes(path, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_gray(path: &Path, h: usize, w: usize, values: &[u8]) {
        let mut bytes = Vec::new();
        {
            let mut e = png::Encoder::new(&mut bytes, w as u32, h as u32);
            e.set_color(png::ColorType::Grayscale);
            e.set_depth(png::BitDepth::Eight);
            e.write_header().unwrap().write_image_data(values).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }

    fn folders(dir: &Path) -> SegmentationLayout {
        std::fs::create_dir_all(dir.join("images")).unwrap();
        std::fs::create_dir_all(dir.join("labels")).unwrap();
        SegmentationLayout::folders(dir, 3, 11)
    }

    #[test]
    fn voc_palette_labels_read_as_indices_with_void() {
        let dir = tempfile::tempdir().unwrap();
        let voc = dir.path();
        std::fs::create_dir_all(voc.join("ImageSets/Segmentation")).unwrap();
        std::fs::create_dir_all(voc.join("JPEGImages")).unwrap();
        std::fs::create_dir_all(voc.join("SegmentationClass")).unwrap();
        std::fs::write(voc.join("ImageSets/Segmentation/val.txt"), "a\n").unwrap();
        // VOC colours: 0 background black, 1 aeroplane (128, 0, 0), 255 void (224, 224, 192).
        let mut palette = vec![[0u8; 3]; 256];
        palette[1] = [128, 0, 0];
        palette[255] = [224, 224, 192];
        let mask = [0u8, 1, 255, 1, 0, 0];
        write_label_png(voc.join("SegmentationClass/a.png"), &mask, 2, 3, &palette).unwrap();
        write_rgb_png(voc.join("JPEGImages/a.png"), &[10u8; 18], 2, 3).unwrap();
        let layout = SegmentationLayout::voc(voc, "val").unwrap();
        assert_eq!((layout.classes, layout.void), (21, 255));
        let pairs = layout.read().unwrap();
        assert_eq!(pairs[0].mask, mask.to_vec());
        assert!((pairs[0].image[0] - 10.0 / 255.0).abs() < 1e-7);
    }

    #[test]
    fn size_mismatch_and_bad_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let layout = folders(dir.path());
        write_rgb_png(dir.path().join("images/x.png"), &[0u8; 2 * 3 * 3], 2, 3).unwrap();
        write_gray(&dir.path().join("labels/x.png"), 3, 2, &[0; 6]);
        let msg = layout.read().unwrap_err().to_string();
        assert!(
            msg.contains("labels/x.png") && msg.contains("label is 3×2 but its image"),
            "{msg}"
        );

        write_gray(&dir.path().join("labels/x.png"), 2, 3, &[0, 1, 2, 11, 7, 0]);
        let msg = layout.read().unwrap_err().to_string();
        assert!(msg.contains("value 7 at row 1, column 1"), "{msg}");

        std::fs::remove_file(dir.path().join("images/x.png")).unwrap();
        let msg = layout.read().unwrap_err().to_string();
        assert!(msg.contains("no image with this name"), "{msg}");
    }

    #[test]
    fn resizing_keeps_labels_discrete_and_images_smooth() {
        let mask = [0u8, 1, 2, 3];
        assert_eq!(
            resize_nearest(&mask, 2, 2, 4, 4),
            vec![0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]
        );
        let plane = [0.0f32, 1.0];
        // Centres at 0.25 and 0.75 of a 1×2 → 1×4 upsampling: clamped, 0.25, 0.75, clamped.
        assert_eq!(
            resize_bilinear(&plane, 1, 1, 2, 1, 4),
            vec![0.0, 0.25, 0.75, 1.0]
        );
    }

    #[test]
    fn shipped_camvid_reads_when_present() {
        let Some(dir) = gnsm_data::default_data_dir() else {
            return;
        };
        let root = dir.join("camvid/val");
        if !root.exists() {
            return;
        }
        let pairs = SegmentationLayout::folders(&root, 11, 11).read().unwrap();
        assert_eq!(pairs.len(), 101);
        assert_eq!((pairs[0].height, pairs[0].width), (96, 128));
        assert!(pairs.iter().all(|p| p.mask.iter().all(|&v| v <= 11)));
    }
}
