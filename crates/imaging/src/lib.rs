//! Turning what an image API returns into what goes on stream.
//!
//! - ghosts are stored as JPEG (quality 80): they are opaque and photographic;
//!   an answer that already is a 1024x1024 JPEG is kept as it is;
//! - friends have their solid background keyed out to transparency (unless
//!   the model drew it transparent) and are stored as lossy WEBP with alpha,
//!   and the background colour is reported.
//!
//! Everything here is CPU-bound and synchronous: callers run it on a blocking
//! thread. [`placeholder`] draws stand-in images for running without an API.

mod codec;
mod key;
pub mod placeholder;

pub use codec::{
    EXPECTED_DIMENSION, ImagingError, MAX_DIMENSION, ProcessedImage, decode, process_friend,
    process_ghost, reencode_ghost,
};
pub use key::{KeyedImage, hex_color, key_out_background};
