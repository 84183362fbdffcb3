//! Stand-in images for running dynamo without an image API: deterministic
//! (the same prompt always gives the same picture) and shaped like the real
//! thing, so the whole pipeline — keying included — runs on them.
//!
//! - a ghost: a pale, glitchy spectre on a dark VHS-style background;
//! - a friend: an outlined clip-art creature in the friend's colour on a solid
//!   background of the complement colour, ready for chroma keying.

use dynamo_wire::Color;
use image::{ImageFormat, Rgb, RgbImage};
use std::io::Cursor;

/// What to draw.
#[derive(Debug, Clone, Copy)]
pub enum Scene {
    Ghost,
    Friend { color: Color },
}

/// Renders `scene` as a PNG of `size`×`size` pixels, varied by `seed_text`.
pub fn render_png(scene: Scene, seed_text: &str, size: u32) -> Vec<u8> {
    let image = match scene {
        Scene::Ghost => ghost(seed(seed_text), size),
        Scene::Friend { color } => friend(seed(seed_text), color, size),
    };
    let mut png = Vec::new();
    // Encoding an in-memory RGB buffer to PNG into a Vec has no failure mode
    // besides allocation, which aborts anyway.
    let _ = image.write_to(&mut Cursor::new(&mut png), ImageFormat::Png);
    png
}

/// FNV-1a: stable across runs and platforms, unlike std's hasher.
fn seed(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A tiny deterministic generator (xorshift) for noise and variation.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn ghost(seed: u64, size: u32) -> RgbImage {
    let mut noise = Noise(seed | 1);
    let s = size as f32;
    let hue = noise.unit();
    let tint = [0.55 + 0.45 * hue, 0.75, 1.0 - 0.4 * hue];
    let (cx, cy) = (s * (0.45 + 0.1 * noise.unit()), s * 0.45);
    let radius = s * (0.2 + 0.05 * noise.unit());
    let glitch_rows: Vec<(u32, i32)> = (0..12)
        .map(|_| {
            let row = (noise.unit() * s) as u32;
            let shift = ((noise.unit() - 0.5) * s * 0.08) as i32;
            (row, shift)
        })
        .collect();
    RgbImage::from_fn(size, size, |x, y| {
        let shift = glitch_rows
            .iter()
            .find(|(row, _)| y.abs_diff(*row) < size / 128 + 2)
            .map_or(0, |(_, shift)| *shift);
        let (fx, fy) = (x as f32 + shift as f32, y as f32);
        // Head: a circle; body: a column below it whose hem waves.
        let head = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt() / radius;
        let hem = cy + radius * 1.6 + (fx / s * 40.0).sin() * radius * 0.12;
        let in_body = (fx - cx).abs() < radius && fy > cy && fy < hem;
        let glow = if head < 1.0 || in_body {
            0.85
        } else {
            (1.0 - (head - 1.0) * 1.5).clamp(0.0, 1.0) * 0.35
        };
        let eye = |ex: f32| {
            ((fx - ex).powi(2) + (fy - (cy - radius * 0.1)).powi(2)).sqrt() < radius * 0.13
        };
        let dark = eye(cx - radius * 0.35) || eye(cx + radius * 0.35);
        let scanline = if y % 4 < 2 { 1.0 } else { 0.82 };
        let grain = (noise.unit() - 0.5) * 0.12;
        let base = 0.04 + 0.06 * fy / s;
        let channel = |i: usize| {
            let light = if dark { 0.02 } else { base + glow * tint[i] };
            // Chromatic aberration: red and blue sampled a little apart.
            let aberration = if i == 1 {
                0.0
            } else {
                0.03 * ((fx + i as f32 * 3.0) / 9.0).sin()
            };
            (((light + grain + aberration) * scanline).clamp(0.0, 1.0) * 255.0) as u8
        };
        Rgb([channel(0), channel(1), channel(2)])
    })
}

fn friend(seed: u64, color: Color, size: u32) -> RgbImage {
    let mut noise = Noise(seed | 1);
    let s = size as f32;
    let background = Rgb(color.complement().rgb());
    let body = color.rgb();
    let shade = body.map(|c| (c as f32 * 0.7) as u8);
    let (cx, cy) = (s * 0.5, s * (0.52 + 0.04 * noise.unit()));
    let (rx, ry) = (
        s * (0.24 + 0.06 * noise.unit()),
        s * (0.28 + 0.05 * noise.unit()),
    );
    let outline = s * 0.012;
    let eye_gap = rx * (0.3 + 0.15 * noise.unit());
    RgbImage::from_fn(size, size, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let body_d = (((fx - cx) / rx).powi(2) + ((fy - cy) / ry).powi(2)).sqrt();
        let edge = (body_d - 1.0) * rx.min(ry);
        if edge > outline {
            return background;
        }
        if edge > -outline {
            return Rgb([12, 12, 12]);
        }
        let eye_y = cy - ry * 0.25;
        for ex in [cx - eye_gap, cx + eye_gap] {
            let d = ((fx - ex).powi(2) + (fy - eye_y).powi(2)).sqrt();
            if d < rx * 0.1 {
                return Rgb([12, 12, 12]);
            }
            if d < rx * 0.18 {
                return Rgb([250, 250, 250]);
            }
        }
        let mouth = ((fx - cx).powi(2) + (fy - (cy + ry * 0.05)).powi(2)).sqrt();
        if fy > cy + ry * 0.1 && (mouth - ry * 0.3).abs() < outline * 0.7 {
            return Rgb([12, 12, 12]);
        }
        // Flat clip-art shading: the lower right is a step darker.
        if (fx - cx) / rx + (fy - cy) / ry > 0.9 {
            Rgb(shade)
        } else {
            Rgb(body)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, key_out_background};

    #[test]
    fn same_prompt_same_picture() {
        let a = render_png(Scene::Ghost, "a seal", 128);
        assert_eq!(a, render_png(Scene::Ghost, "a seal", 128));
        assert_ne!(a, render_png(Scene::Ghost, "a walrus", 128));
    }

    #[test]
    fn friend_background_keys_out_to_its_complement() {
        let png = render_png(
            Scene::Friend {
                color: Color::Orange,
            },
            "a robot",
            256,
        );
        let keyed = key_out_background(&decode(&png).unwrap().into_rgb8());
        assert_eq!(keyed.background, Color::SkyBlue.rgb());
        assert!(
            keyed.transparent_fraction > 0.5,
            "{}",
            keyed.transparent_fraction
        );
        let centre = keyed.image.get_pixel(128, 150).0;
        assert_eq!(centre[3], 255, "the figure stays opaque");
    }
}
