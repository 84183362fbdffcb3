//! Decoding upstream images and encoding what we store.

use crate::key::{hex_color, key_out_background};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ExtendedColorType, ImageFormat, ImageReader};
use std::io::Cursor;

/// Larger images are refused rather than decoded: the APIs return 1024x1024,
/// and a bigger claim in a header is more likely a decompression bomb.
pub const MAX_DIMENSION: u32 = 4096;
const JPEG_QUALITY: u8 = 80;

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

/// A ghost: the generated image as a JPEG at quality 80.
pub fn process_ghost(source: &[u8]) -> Result<ProcessedImage, ImagingError> {
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

/// A friend: the solid background keyed out, as a WEBP with alpha.
pub fn process_friend(source: &[u8]) -> Result<ProcessedImage, ImagingError> {
    let rgb = decode(source)?.into_rgb8();
    let keyed = key_out_background(&rgb);
    let (width, height) = keyed.image.dimensions();
    let mut bytes = Vec::with_capacity(512 * 1024);
    WebPEncoder::new_lossless(&mut bytes)
        .encode(
            keyed.image.as_raw(),
            width,
            height,
            ExtendedColorType::Rgba8,
        )
        .map_err(|e| ImagingError::Encode(e.to_string()))?;
    Ok(ProcessedImage {
        bytes,
        content_type: "image/webp",
        extension: "webp",
        width,
        height,
        background: Some(hex_color(keyed.background)),
    })
}
