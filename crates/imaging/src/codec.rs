//! Decoding upstream images and encoding what we store.

use crate::key::{hex_color, key_out_background};
use image::{DynamicImage, ImageFormat, ImageReader};
use std::io::Cursor;

/// Larger images are refused rather than decoded: the APIs return 1024x1024,
/// and a bigger claim in a header is more likely a decompression bomb.
pub const MAX_DIMENSION: u32 = 4096;
const JPEG_QUALITY: u8 = 80;
const WEBP_QUALITY: u8 = 80;
/// The size every image is asked for (SPEC §3): an answer of another size is
/// re-encoded rather than stored as it came.
pub const EXPECTED_DIMENSION: u32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("the image is not PNG, JPEG or WEBP")]
    UnknownFormat,
    #[error("the image cannot be decoded: {0}")]
    Decode(String),
    #[error("the image cannot be encoded: {0}")]
    Encode(String),
}

/// An image ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedImage {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub width: u32,
    pub height: u32,
    /// The keyed-out background, `#rrggbb` (friends only).
    pub background: Option<String>,
}

/// Decodes PNG, JPEG or WEBP, refusing oversized images before allocating.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ImagingError> {
    let format = image::guess_format(bytes).map_err(|_| ImagingError::UnknownFormat)?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP
    ) {
        return Err(ImagingError::UnknownFormat);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| ImagingError::Decode(e.to_string()))
}

/// The format and dimensions from the header alone, without decoding.
fn peek(bytes: &[u8]) -> Option<(ImageFormat, u32, u32)> {
    let format = image::guess_format(bytes).ok()?;
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .ok()?;
    Some((format, width, height))
}

/// A ghost: the generated image as a JPEG at quality 80. An answer that is
/// already a JPEG of the expected size (we ask for one: `output_format:
/// jpeg`, `output_compression: 80`) is stored untouched — re-encoding it would
/// only cost CPU and lose quality.
pub fn process_ghost(source: &[u8]) -> Result<ProcessedImage, ImagingError> {
    if let Some((ImageFormat::Jpeg, EXPECTED_DIMENSION, EXPECTED_DIMENSION)) = peek(source) {
        return Ok(ProcessedImage {
            bytes: source.to_vec(),
            content_type: "image/jpeg",
            extension: "jpg",
            width: EXPECTED_DIMENSION,
            height: EXPECTED_DIMENSION,
            background: None,
        });
    }
    reencode_ghost(source)
}

/// A ghost re-encoded as JPEG at quality 80, whatever it came as: what
/// [`process_ghost`] does with an answer that is not a conforming JPEG (and
/// did with every answer before we asked for JPEG; the benchmark compares).
pub fn reencode_ghost(source: &[u8]) -> Result<ProcessedImage, ImagingError> {
    let rgb = decode(source)?.into_rgb8();
    let (width, height) = (dimension(rgb.width())?, dimension(rgb.height())?);
    let mut bytes = Vec::with_capacity(256 * 1024);
    // jpeg-encoder rather than image's own JPEG encoder: SIMD (AVX2) and 4:2:0
    // chroma, like libjpeg's defaults; see BENCHMARKS.md.
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, JPEG_QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    encoder
        .encode(rgb.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| ImagingError::Encode(e.to_string()))?;
    Ok(ProcessedImage {
        bytes,
        content_type: "image/jpeg",
        extension: "jpg",
        width: rgb.width(),
        height: rgb.height(),
        background: None,
    })
}

/// JPEG dimensions are 16-bit; decode() already refuses anything over
/// MAX_DIMENSION, so this fails only if that limit is raised past 65535.
fn dimension(pixels: u32) -> Result<u16, ImagingError> {
    u16::try_from(pixels)
        .map_err(|_| ImagingError::Encode(format!("{pixels} pixels is too wide for JPEG")))
}

/// A friend as a WEBP with alpha. When the model drew the background
/// transparent itself (`background: transparent`), nothing is keyed and the
/// recorded background is `complement`, the colour the prompt named (SPEC §3
/// S3: the alerts service paints the backdrop with it); a WEBP of the
/// expected size is then stored untouched. Otherwise the solid background is
/// keyed out and the detected colour recorded.
pub fn process_friend(
    source: &[u8],
    complement: Option<[u8; 3]>,
) -> Result<ProcessedImage, ImagingError> {
    let decoded = decode(source)?;
    if let Some(complement) = complement
        && decoded.color().has_alpha()
    {
        let rgba = decoded.into_rgba8();
        if rgba.pixels().any(|p| p.0[3] < 255) {
            let (width, height) = rgba.dimensions();
            let conforming = matches!(peek(source), Some((ImageFormat::WebP, w, h)) if w == EXPECTED_DIMENSION && h == EXPECTED_DIMENSION);
            let bytes = if conforming {
                source.to_vec()
            } else {
                encode_webp(&rgba)?
            };
            return Ok(ProcessedImage {
                bytes,
                content_type: "image/webp",
                extension: "webp",
                width,
                height,
                background: Some(hex_color(complement)),
            });
        }
        let keyed = key_out_background(&image::DynamicImage::ImageRgba8(rgba).into_rgb8());
        return keyed_friend(keyed);
    }
    keyed_friend(key_out_background(&decoded.into_rgb8()))
}

fn keyed_friend(keyed: crate::KeyedImage) -> Result<ProcessedImage, ImagingError> {
    let (width, height) = keyed.image.dimensions();
    Ok(ProcessedImage {
        bytes: encode_webp(&keyed.image)?,
        content_type: "image/webp",
        extension: "webp",
        width,
        height,
        background: Some(hex_color(keyed.background)),
    })
}

/// Lossy WEBP with alpha at quality 80, as Pillow's `quality=80` makes it,
/// through libwebp: about a tenth of the lossless file, for an overlay
/// nobody inspects pixel by pixel (BENCHMARKS.md).
fn encode_webp(image: &image::RgbaImage) -> Result<Vec<u8>, ImagingError> {
    let (width, height) = image.dimensions();
    let encoded = webp::Encoder::from_rgba(image.as_raw(), width, height)
        .encode_simple(false, f32::from(WEBP_QUALITY))
        .map_err(|e| ImagingError::Encode(format!("libwebp: {e:?}")))?;
    Ok(encoded.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn jpeg(size: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(size, size, |x, y| Rgb([x as u8, y as u8, 90]));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        bytes
    }

    #[test]
    fn a_conforming_jpeg_ghost_is_stored_untouched() {
        let source = jpeg(EXPECTED_DIMENSION);
        let processed = process_ghost(&source).unwrap();
        assert_eq!(processed.bytes, source);
        assert_eq!(processed.content_type, "image/jpeg");
    }

    #[test]
    fn a_jpeg_ghost_of_another_size_is_re_encoded() {
        let source = jpeg(64);
        assert_ne!(process_ghost(&source).unwrap().bytes, source);
    }

    #[test]
    fn a_friend_drawn_transparent_records_the_complement_and_is_not_keyed() {
        let image = RgbaImage::from_fn(64, 64, |x, _| {
            if x < 32 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([250, 120, 0, 255])
            }
        });
        let mut png = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let processed = process_friend(&png, Some([0, 135, 255])).unwrap();
        assert_eq!(processed.background.as_deref(), Some("#0087ff"));
        let stored = decode(&processed.bytes).unwrap().into_rgba8();
        // Lossy WEBP: the figure's colour within a few units, alpha exact.
        let figure = stored.get_pixel(40, 5).0;
        assert_eq!(figure[3], 255, "the figure is kept");
        let expected = [250, 120, 0];
        assert!(
            (0..3).all(|i| figure[i].abs_diff(expected[i]) <= 4),
            "{figure:?}"
        );
        assert_eq!(stored.get_pixel(5, 5).0[3], 0);
    }

    #[test]
    fn an_opaque_friend_is_keyed_even_when_the_complement_is_known() {
        let image = RgbImage::from_fn(64, 64, |x, y| {
            if (20..44).contains(&x) && (20..44).contains(&y) {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 0, 200])
            }
        });
        let mut png = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let processed = process_friend(&png, Some([1, 2, 3])).unwrap();
        assert_eq!(processed.background.as_deref(), Some("#ff00c8"));
    }
}
