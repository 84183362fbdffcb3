//! Turning what an image API returns into what goes on stream.
//!
//! - ghosts are re-encoded as JPEG (quality 80): they are opaque and photographic;
//! - friends have their solid background keyed out to transparency and are
//!   stored as WEBP with alpha, and the background colour is reported.
//!
//! Everything here is CPU-bound and synchronous: callers run it on a blocking
//! thread. [`placeholder`] draws stand-in images for running without an API.

mod codec;
mod key;
pub mod placeholder;

pub use codec::{
    EXPECTED_DIMENSION, ImagingError, MAX_DIMENSION, ProcessedImage, decode, process_friend,
    process_ghost,
};
pub use key::{KeyedImage, hex_color, key_out_background};
