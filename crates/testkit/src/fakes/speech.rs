//! The fake `POST /audio/speech` (issue 30), as strict as OpenAI's: the key
//! (checked by the shared gate), a model it offers (404 `model_not_found`),
//! a built-in voice or `{"id"}`, a known `response_format`, an input of 1 to
//! 4096 characters and a speed of 0.25 to 4.0 (400 naming the `param`). The
//! answer is a real, playable file of the format asked: a WAV tone, raw
//! PCM, or a silent MP3 made of valid MPEG-1 Layer III frames.

use super::Shared;
use super::models::{invalid_value, refuse_unless_available};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What the fake speech endpoint does on its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechBehavior {
    /// Answers the audio.
    Speak,
    /// 500 `server_error`.
    ServerError,
    /// Answers the audio after a pause.
    Slow { millis: u64 },
}

const VOICES: [&str; 13] = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
    "marin", "cedar",
];
const FORMATS: [&str; 6] = ["mp3", "opus", "aac", "flac", "wav", "pcm"];
const MAX_INPUT_CHARS: usize = 4096;

fn bad_request(param: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error",
                                "param": param, "code": null}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub(super) async fn speak(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(refused) = refuse_unless_available(&state, &model) {
        return refused;
    }
    let input = body["input"].as_str().unwrap_or_default().to_owned();
    let chars = input.chars().count();
    if chars == 0 || chars > MAX_INPUT_CHARS {
        return bad_request(
            "input",
            &format!("Input must be 1 to {MAX_INPUT_CHARS} characters; got {chars}."),
        );
    }
    let voice = &body["voice"];
    let known_voice = voice.as_str().is_some_and(|v| VOICES.contains(&v))
        || voice.get("id").and_then(Value::as_str).is_some();
    if !known_voice {
        return invalid_value("voice", voice, &VOICES);
    }
    let format = body["response_format"].as_str().unwrap_or("mp3").to_owned();
    if !FORMATS.contains(&format.as_str()) {
        return invalid_value("response_format", &body["response_format"], &FORMATS);
    }
    if let Some(speed) = body.get("speed").and_then(Value::as_f64)
        && !(0.25..=4.0).contains(&speed)
    {
        return bad_request("speed", "Speed must be between 0.25 and 4.0.");
    }
    let behavior = {
        let mut state = state.lock().unwrap();
        state.speech_calls.push(body.clone());
        state
            .speech_script
            .pop_front()
            .unwrap_or(SpeechBehavior::Speak)
    };
    match behavior {
        SpeechBehavior::ServerError => {
            return super::api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "server_error",
                "The server had an error while processing your request.",
            );
        }
        SpeechBehavior::Slow { millis } => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        }
        SpeechBehavior::Speak => {}
    }
    // About as long as the caption would take to say.
    let ms = (chars as u32 * 60).clamp(400, 10_000);
    let (content_type, bytes) = match format.as_str() {
        "mp3" => ("audio/mpeg", silent_mp3(ms)),
        "wav" => ("audio/wav", wav_tone(ms)),
        "pcm" => ("audio/pcm", wav_tone(ms)[44..].to_vec()),
        other => {
            // The fake encodes only what dynamo's tests ask for.
            return bad_request(
                "response_format",
                &format!("the fake cannot encode {other}: ask for mp3, wav or pcm"),
            );
        }
    };
    ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
}

/// A real WAV file (8 kHz, mono, 8-bit PCM) of a 440 Hz tone lasting `ms`.
pub fn wav_tone(ms: u32) -> Vec<u8> {
    let rate = 8000u32;
    let samples: Vec<u8> = (0..rate * ms / 1000)
        .map(|i| {
            let phase = f64::from(i) * 440.0 * std::f64::consts::TAU / f64::from(rate);
            (128.0 + 60.0 * phase.sin()) as u8
        })
        .collect();
    let mut file = Vec::with_capacity(44 + samples.len());
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    file.extend_from_slice(b"WAVEfmt ");
    file.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    file.extend_from_slice(&1u16.to_le_bytes()); // PCM
    file.extend_from_slice(&1u16.to_le_bytes()); // mono
    file.extend_from_slice(&rate.to_le_bytes());
    file.extend_from_slice(&rate.to_le_bytes()); // bytes per second
    file.extend_from_slice(&1u16.to_le_bytes()); // block align
    file.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    file.extend_from_slice(b"data");
    file.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    file.extend_from_slice(&samples);
    file
}

/// A real MP3 of `ms` of silence: MPEG-1 Layer III frames (128 kbit/s,
/// 44.1 kHz, mono, no CRC) whose side information codes no samples, which
/// every decoder plays as silence. Each frame is 417 bytes and 1152 samples.
pub fn silent_mp3(ms: u32) -> Vec<u8> {
    const HEADER: [u8; 4] = [0xFF, 0xFB, 0x90, 0xC0];
    const FRAME_BYTES: usize = 417; // 144 * 128000 / 44100, no padding
    let frames = (ms as usize * 44_100 / 1000).div_ceil(1152).max(1);
    let mut file = Vec::with_capacity(frames * FRAME_BYTES);
    for _ in 0..frames {
        file.extend_from_slice(&HEADER);
        file.resize(file.len() + FRAME_BYTES - HEADER.len(), 0);
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_are_what_they_say() {
        let mp3 = silent_mp3(1000);
        assert_eq!(&mp3[..2], &[0xFF, 0xFB]);
        assert_eq!(mp3.len() % 417, 0);
        assert_eq!(mp3.len() / 417, 39, "a second is 39 frames of 1152 samples");
        let wav = wav_tone(500);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 44 + 4000);
    }
}
