//! What an uploaded file is, from its first bytes: a name or a declared
//! Content-Type says nothing (a PNG renamed `.mp3` is still a PNG), and OBS's
//! browser plays only what it can decode.

/// A sound format the overlay plays in every browser OBS ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoundFormat {
    Mp3,
    Ogg,
    Wav,
}

impl SoundFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::Ogg => "audio/ogg",
            Self::Wav => "audio/wav",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
            Self::Wav => "wav",
        }
    }
}

/// The format of `bytes`, or why it is not a sound dynamo plays (naming
/// what it looks like instead, when that is recognisable).
pub fn detect(bytes: &[u8]) -> Result<SoundFormat, String> {
    const EXPECTED: &str = "upload an mp3, ogg or wav file";
    if bytes.starts_with(b"ID3") || is_mpeg_audio_frame(bytes) {
        return Ok(SoundFormat::Mp3);
    }
    if bytes.starts_with(b"OggS") {
        return Ok(SoundFormat::Ogg);
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        return Ok(SoundFormat::Wav);
    }
    let looks_like = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("a PNG image")
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("a JPEG image")
    } else if bytes.starts_with(b"GIF8") {
        Some("a GIF image")
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("a WEBP image")
    } else if bytes.starts_with(b"fLaC") {
        Some("a FLAC file")
    } else if bytes.get(4..8) == Some(b"ftyp") {
        Some("an MP4/M4A file")
    } else {
        None
    };
    Err(match looks_like {
        Some(what) => format!("the file is {what}, not a sound: {EXPECTED}"),
        None if bytes.is_empty() => format!("the body is empty: {EXPECTED}"),
        None => format!("the file is not an mp3, ogg or wav sound: {EXPECTED}"),
    })
}

/// An MPEG audio frame header without an ID3 tag: 11 sync bits, then a
/// layer that is not the reserved `00` (which ADTS AAC uses).
fn is_mpeg_audio_frame(bytes: &[u8]) -> bool {
    matches!(bytes, [0xFF, second, ..] if second & 0xE0 == 0xE0 && second & 0x06 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sounds_are_known_by_their_content() {
        assert_eq!(detect(b"ID3\x04\x00rest"), Ok(SoundFormat::Mp3));
        assert_eq!(detect(&[0xFF, 0xFB, 0x90, 0x00]), Ok(SoundFormat::Mp3));
        assert_eq!(detect(b"OggS\x00\x02"), Ok(SoundFormat::Ogg));
        assert_eq!(
            detect(b"RIFF\x24\x00\x00\x00WAVEfmt "),
            Ok(SoundFormat::Wav)
        );
    }

    #[test]
    fn other_files_are_named_in_the_refusal() {
        let png = detect(b"\x89PNG\r\n\x1a\n\x00\x00").unwrap_err();
        assert!(png.contains("a PNG image"), "{png}");
        assert!(detect(b"\xFF\xD8\xFF\xE0").unwrap_err().contains("JPEG"));
        assert!(
            detect(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
                .unwrap_err()
                .contains("WEBP")
        );
        // ADTS AAC shares the sync bits but not the layer.
        assert!(detect(&[0xFF, 0xF1, 0x50, 0x80]).is_err());
        assert!(detect(b"").unwrap_err().contains("empty"));
        assert!(detect(b"hello").unwrap_err().contains("mp3, ogg or wav"));
    }
}
