//! The image step against Pillow doing the same work in the same run.
//!
//! `cargo bench -p dynamo-imaging --bench image_step` measures (median of 15
//! runs per image after a warm-up) and prints, per style, milliseconds per
//! image, output bytes and PSNR for dynamo and for Pillow
//! (`bench/pillow_image_step.py`, needs `pip install -r bench/requirements.txt`),
//! with dynamo/Pillow ratios:
//! - ghost: PNG answer → JPEG q80 (PSNR against the source);
//! - friend: PNG answer → keyed → lossy WEBP q80, against Pillow's
//!   `quality=80` WEBP of the *same keyed image* (PSNR of each against it);
//! - ghost-jpeg: the answer already a 1024x1024 JPEG (we ask for one): dynamo
//!   now (stored as it is) against dynamo re-encoding it as before; the
//!   Pillow columns hold the re-encode.
//!
//! Under `cargo test` it runs each step once, as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is the point

use dynamo_imaging::{
    ProcessedImage, key_out_background, process_friend, process_ghost, reencode_ghost,
};
use image::RgbaImage;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Measured {
    ms: f64,
    bytes: usize,
    psnr: f64,
}

/// PSNR over RGB of the pixels the output keeps opaque (all of them for
/// ghosts): the same figure the Pillow script computes.
fn psnr(source: &[u8], output: &[u8]) -> f64 {
    let a: RgbaImage = image::load_from_memory(source).unwrap().into_rgba8();
    let b: RgbaImage = image::load_from_memory(output).unwrap().into_rgba8();
    let (mut sum, mut count) = (0.0f64, 0u64);
    for (p, q) in a.pixels().zip(b.pixels()) {
        if q.0[3] == 255 {
            for c in 0..3 {
                let d = f64::from(p.0[c]) - f64::from(q.0[c]);
                sum += d * d;
            }
            count += 3;
        }
    }
    if count == 0 || sum == 0.0 {
        return 99.0;
    }
    10.0 * (255.0f64.powi(2) / (sum / count as f64)).log10()
}

fn measure(
    work: fn(&[u8]) -> Result<ProcessedImage, dynamo_imaging::ImagingError>,
    source: &[u8],
    reference: &[u8],
    runs: usize,
) -> Measured {
    let mut output = work(source).unwrap(); // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        output = work(source).unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Measured {
        ms: times[times.len() / 2],
        bytes: output.bytes.len(),
        psnr: psnr(reference, &output.bytes),
    }
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let runs = if benchmarking { 15 } else { 1 };
    if !benchmarking {
        println!(
            "SMOKE RUN (cargo test): one run of each, only to prove this benchmark still runs; \
             its figures measure nothing. Measure with `cargo bench -p dynamo-imaging --bench image_step`."
        );
    }
    let images = repo().join("bench/images");
    let ghost_png = images.join("ghost-1024.png");
    let friend_png = images.join("friend-1024.png");
    let ghost_source = std::fs::read(&ghost_png).unwrap();
    let friend_source = std::fs::read(&friend_png).unwrap();
    let ghost = measure(process_ghost, &ghost_source, &ghost_source, runs);
    // The image both encoders get: dynamo's keying of the friend, lossless.
    let keyed = key_out_background(&image::load_from_memory(&friend_source).unwrap().into_rgb8());
    let mut keyed_png = Vec::new();
    keyed
        .image
        .write_to(
            &mut std::io::Cursor::new(&mut keyed_png),
            image::ImageFormat::Png,
        )
        .unwrap();
    let keyed_path = std::env::temp_dir().join(format!("dynamo-keyed-{}.png", std::process::id()));
    std::fs::write(&keyed_path, &keyed_png).unwrap();
    let friend = measure(
        |png| process_friend(png, None),
        &friend_source,
        &keyed_png,
        runs,
    );
    // The answer as a conforming JPEG, as OpenAI sends it when asked.
    let jpeg_answer = reencode_ghost(&ghost_source).unwrap().bytes;
    let ghost_jpeg_now = measure(process_ghost, &jpeg_answer, &jpeg_answer, runs);
    let ghost_jpeg_before = measure(reencode_ghost, &jpeg_answer, &jpeg_answer, runs);

    let pillow = Command::new("python3")
        .arg(repo().join("bench/pillow_image_step.py"))
        .arg(&ghost_png)
        .arg(&keyed_path)
        .arg(runs.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        pillow.status.success(),
        "the Pillow reference failed (pip install -r bench/requirements.txt): {}",
        String::from_utf8_lossy(&pillow.stderr)
    );
    let _ = std::fs::remove_file(&keyed_path);
    let mut reference: serde_json::Value = serde_json::from_slice(&pillow.stdout).unwrap();
    reference["ghost-jpeg"] = serde_json::json!({"ms": ghost_jpeg_before.ms,
        "bytes": ghost_jpeg_before.bytes, "psnr": ghost_jpeg_before.psnr});

    println!(
        "image step, 1024x1024, median of {runs} (Pillow {})",
        reference["pillow"].as_str().unwrap_or("?")
    );
    println!(
        "{:<10} {:>10} {:>10} {:>7} | {:>10} {:>10} {:>7} | {:>6} {:>6} {:>7}",
        "style",
        "dynamo ms",
        "bytes",
        "PSNR",
        "Pillow ms",
        "bytes",
        "PSNR",
        "time×",
        "size×",
        "ΔPSNR"
    );
    for (style, ours) in [
        ("ghost", &ghost),
        ("friend", &friend),
        ("ghost-jpeg", &ghost_jpeg_now),
    ] {
        let theirs = &reference[style];
        let ms = theirs["ms"].as_f64().unwrap();
        let bytes = theirs["bytes"].as_f64().unwrap();
        let psnr = theirs["psnr"].as_f64().unwrap();
        println!(
            "{style:<10} {:>10.1} {:>10} {:>7.2} | {:>10.1} {:>10} {:>7.2} | {:>6.2} {:>6.2} {:>+7.2}",
            ours.ms,
            ours.bytes,
            ours.psnr,
            ms,
            bytes,
            psnr,
            ours.ms / ms,
            ours.bytes as f64 / bytes,
            ours.psnr - psnr
        );
        assert!(
            ours.bytes > 0 && ours.psnr > 25.0,
            "{style}: a broken output"
        );
    }
}
