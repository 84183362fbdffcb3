//! Chroma keying for friends: the image model draws the figure on a solid
//! background of the complement colour; we find that colour and make it
//! transparent.
//!
//! Only background that is *connected to the border* is removed (a flood fill
//! from the edges), so pixels inside the figure's black outline that happen to
//! be close to the background colour are kept. At the boundary, pixels that are
//! a mix of figure and background get partial alpha and have the background's
//! share subtracted from their colour, which is what leaves no coloured halo.

use image::{Rgb, RgbImage, RgbaImage};

/// Distance (in RGB units) under which a pixel is background, fully transparent:
/// room for JPEG-ish noise and gentle gradients in the generated background.
const HARD_DISTANCE: f32 = 60.0;
/// Above the soft distance a pixel is figure, fully opaque; between the two,
/// alpha ramps linearly: the anti-aliased rim of the drawing. The rim mixes the
/// background with the black outline, so the ramp is scaled to how far the
/// background is from black: a half-and-half pixel then gets about half alpha.
fn soft_distance(background: [u8; 3]) -> f32 {
    (0.75 * color_distance(background, [0, 0, 0])).clamp(HARD_DISTANCE + 60.0, 250.0)
}
/// How deep a frame along the edges is sampled to find the background colour.
const BORDER_SAMPLE: u32 = 4;

/// The result of keying.
#[derive(Debug, Clone)]
pub struct KeyedImage {
    pub image: RgbaImage,
    /// The detected background colour.
    pub background: [u8; 3],
    /// Share of pixels made fully transparent.
    pub transparent_fraction: f32,
}

/// `#rrggbb`, lower case.
pub fn hex_color([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

pub fn key_out_background(source: &RgbImage) -> KeyedImage {
    let background = border_color(source);
    let (width, height) = source.dimensions();
    let (w, h) = (width as usize, height as usize);
    let distance: Vec<f32> = source
        .pixels()
        .map(|pixel| color_distance(pixel.0, background))
        .collect();

    // Alpha per pixel; None = not reached by the fill (figure, opaque).
    let soft = soft_distance(background);
    let mut alpha: Vec<Option<f32>> = vec![None; w * h];
    let mut stack: Vec<usize> = Vec::with_capacity(w * 4);
    let visit = |index: usize, alpha: &mut Vec<Option<f32>>, stack: &mut Vec<usize>| {
        if alpha[index].is_none() && distance[index] < soft {
            let a = ((distance[index] - HARD_DISTANCE) / (soft - HARD_DISTANCE)).clamp(0.0, 1.0);
            alpha[index] = Some(a);
            // The fill continues only through true background; rim pixels end it,
            // so it cannot creep through anti-aliasing into the figure.
            if a == 0.0 {
                stack.push(index);
            }
        }
    };
    for x in 0..w {
        visit(x, &mut alpha, &mut stack);
        visit((h - 1) * w + x, &mut alpha, &mut stack);
    }
    for y in 0..h {
        visit(y * w, &mut alpha, &mut stack);
        visit(y * w + w - 1, &mut alpha, &mut stack);
    }
    while let Some(index) = stack.pop() {
        let (x, y) = (index % w, index / w);
        if x > 0 {
            visit(index - 1, &mut alpha, &mut stack);
        }
        if x + 1 < w {
            visit(index + 1, &mut alpha, &mut stack);
        }
        if y > 0 {
            visit(index - w, &mut alpha, &mut stack);
        }
        if y + 1 < h {
            visit(index + w, &mut alpha, &mut stack);
        }
    }

    let mut transparent = 0usize;
    let mut image = RgbaImage::new(width, height);
    for ((out, pixel), a) in image.pixels_mut().zip(source.pixels()).zip(&alpha) {
        out.0 = match a {
            None => [pixel[0], pixel[1], pixel[2], 255],
            Some(a) if *a == 0.0 => {
                transparent += 1;
                [0, 0, 0, 0]
            }
            Some(a) => unmix(pixel, background, *a),
        };
    }
    KeyedImage {
        image,
        background,
        transparent_fraction: transparent as f32 / (w * h).max(1) as f32,
    }
}

/// The colour of the border frame: the per-channel median, which ignores a
/// figure that touches the edge as long as most of the frame is background.
fn border_color(source: &RgbImage) -> [u8; 3] {
    let (width, height) = source.dimensions();
    let depth = BORDER_SAMPLE.min(width / 2).min(height / 2).max(1);
    let mut channels: [Vec<u8>; 3] = Default::default();
    for (x, y, pixel) in source.enumerate_pixels() {
        let on_border = x < depth
            || y < depth
            || x >= width.saturating_sub(depth)
            || y >= height.saturating_sub(depth);
        if on_border {
            for (channel, value) in channels.iter_mut().zip(pixel.0) {
                channel.push(value);
            }
        }
    }
    channels.map(|mut values| {
        if values.is_empty() {
            return 0;
        }
        let middle = values.len() / 2;
        *values.select_nth_unstable(middle).1
    })
}

fn color_distance(a: [u8; 3], b: [u8; 3]) -> f32 {
    let d: f32 = (0..3)
        .map(|i| {
            let delta = a[i] as f32 - b[i] as f32;
            delta * delta
        })
        .sum();
    d.sqrt()
}

/// A rim pixel is `a * figure + (1 - a) * background`: recover the figure's colour.
fn unmix(pixel: &Rgb<u8>, background: [u8; 3], a: f32) -> [u8; 4] {
    let channel = |i: usize| {
        let figure = (pixel[i] as f32 - (1.0 - a) * background[i] as f32) / a;
        figure.round().clamp(0.0, 255.0) as u8
    };
    [
        channel(0),
        channel(1),
        channel(2),
        (a * 255.0).round() as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A green square with a black outline and a "background-coloured" patch
    /// inside it, on a solid magenta background.
    fn drawing() -> RgbImage {
        let background = Rgb([255, 0, 200]);
        RgbImage::from_fn(64, 64, |x, y| {
            let inside = (16..48).contains(&x) && (16..48).contains(&y);
            let outline = inside && !((18..46).contains(&x) && (18..46).contains(&y));
            let patch = (28..36).contains(&x) && (28..36).contains(&y);
            match (inside, outline, patch) {
                (true, true, _) => Rgb([0, 0, 0]),
                (true, false, true) => background,
                (true, false, false) => Rgb([40, 200, 60]),
                _ => background,
            }
        })
    }

    #[test]
    fn background_becomes_transparent_and_figure_stays() {
        let keyed = key_out_background(&drawing());
        assert_eq!(keyed.background, [255, 0, 200]);
        assert_eq!(keyed.image.get_pixel(2, 2).0[3], 0);
        assert_eq!(keyed.image.get_pixel(20, 20).0, [40, 200, 60, 255]);
        assert_eq!(keyed.image.get_pixel(16, 30).0, [0, 0, 0, 255]);
    }

    #[test]
    fn background_coloured_pixels_inside_the_outline_are_kept() {
        let keyed = key_out_background(&drawing());
        assert_eq!(keyed.image.get_pixel(30, 30).0, [255, 0, 200, 255]);
    }

    #[test]
    fn rim_pixels_lose_the_background_tint() {
        // Half figure (black), half magenta.
        let mut image = drawing();
        image.put_pixel(15, 30, Rgb([128, 0, 100]));
        let keyed = key_out_background(&image);
        let rim = keyed.image.get_pixel(15, 30).0;
        assert!(rim[3] > 0 && rim[3] < 255, "partial alpha: {rim:?}");
        assert!(rim[0] < 40 && rim[2] < 40, "no magenta left: {rim:?}");
    }

    #[test]
    fn figure_touching_the_edge_does_not_change_the_background() {
        let mut image = drawing();
        for y in 0..10 {
            image.put_pixel(0, y, Rgb([0, 0, 0]));
        }
        assert_eq!(key_out_background(&image).background, [255, 0, 200]);
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex_color([255, 204, 0]), "#ffcc00");
    }
}
