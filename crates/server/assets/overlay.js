// The OBS overlay: plays dynamo's alerts one at a time.
//
// The server owns the play-out order. A live stream (/overlay/events) says
// whether playback is paused, which entry is on air and how many wait; when
// idle and not paused, the overlay asks for the next entry (/overlay/next),
// plays it (entrance, `duration`, exit) and reports it finished. A reloaded
// overlay asks again and gets what follows: the server ended the entry that
// was on air, so nothing plays twice. Idle, no timer runs.
'use strict';

(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get('token') || '';
  // preview=1 (the live page's URL builder): a sample alert in a loop, no
  // token, no server queue.
  const PREVIEW = params.get('preview') === '1';
  const SAMPLE = {
    id: 0, image_request_id: 'preview', style: 'friend', friend_name: 'Robot',
    description: 'a robot who loves soup', viewer_name: 'wasabimilkshake',
    image_url: '/assets/sample-alert.svg', sound_url: null,
  };
  const query = `token=${encodeURIComponent(token)}`;

  /** A number URL parameter, clamped; the fallback when absent or not a number. */
  const number = (name, fallback, min, max) => {
    const value = Number.parseFloat(params.get(name) ?? '');
    return Number.isFinite(value) ? Math.min(max, Math.max(min, value)) : fallback;
  };
  const choice = (name, allowed, fallback) =>
    allowed.includes(params.get(name)) ? params.get(name) : fallback;

  const DURATION_MS = number('duration', 8, 0.5, 300) * 1000;
  const GAP_MS = number('gap', 1, 0, 60) * 1000;
  // volume=0..100 scales every style's own sound volume (0 mutes).
  const VOLUME = number('volume', 100, 0, 100) / 100;
  const ENTER_MS = 600;
  const EXIT_MS = 500;
  const RETRY_MS = 3000;
  // The longest the spoken caption waits for the entrance sound to end.
  const SPEECH_AFTER_MS = 3000;
  const POSITIONS = ['top-left', 'top', 'top-right', 'left', 'center', 'right',
    'bottom-left', 'bottom', 'bottom-right'];

  const body = document.body;
  body.dataset.position = choice('position', POSITIONS, 'top');
  body.dataset.layout = choice('layout', ['stacked', 'side'], 'stacked');
  body.dataset.theme = choice('theme', ['clean', 'vhs', 'comic'], 'clean');
  document.documentElement.style.setProperty('--size', `${number('size', 40, 5, 100)}vh`);
  if (params.has('caption')) {
    document.documentElement.style.setProperty('--caption-size', `${number('caption', 4.4, 1, 20)}vh`);
  }
  document.documentElement.style.setProperty('--enter', `${ENTER_MS}ms`);
  document.documentElement.style.setProperty('--exit', `${EXIT_MS}ms`);

  const card = document.getElementById('alert');
  const image = document.getElementById('alert-image');
  const title = document.getElementById('alert-title');
  const viewer = document.getElementById('alert-viewer');
  const sound = document.getElementById('alert-sound');
  const speech = document.getElementById('alert-speech');

  /** What played, for whoever inspects the page (tests, a curious streamer). */
  const log = [];
  window.overlayLog = log;

  // idle | taking | playing | leaving | resting | stopped
  let phase = 'idle';
  let current = null;   // the entry on air here
  let timer = null;     // the one timer of the alert playing (or the rest after it)
  let state = null;     // the latest `state` event
  let source = null;

  const setStatus = (status) => { body.dataset.status = status; };
  const later = (ms, then) => { clearTimeout(timer); timer = setTimeout(then, ms); };

  /** Everything stops: the token was revoked (or never valid). */
  function stop(reason) {
    phase = 'stopped';
    clearTimeout(timer);
    source?.close();
    card.hidden = true;
    card.className = '';
    image.removeAttribute('src');
    sound.pause();
    speech.pause();
    setStatus(reason);
  }

  /** Decides what to do after any change. */
  function react() {
    if (!state || phase === 'stopped') return;
    if (phase === 'playing' && current
        && state.on_air !== current.id && state.taken !== null && state.taken >= current.id) {
      // The server ended it (an admin skipped it): leave now.
      leave(false);
      return;
    }
    if (phase === 'idle' && !state.paused && (state.waiting > 0 || state.on_air !== null)) {
      takeNext();
    }
  }

  async function takeNext() {
    phase = 'taking';
    if (PREVIEW) { await play({ ...SAMPLE }); return; }
    try {
      const response = await fetch(`/overlay/next?${query}`, { method: 'POST' });
      if (response.status === 401) { stop('revoked'); return; }
      if (response.status === 200) { await play(await response.json()); return; }
    } catch (error) {
      // The network is away: the stream reconnects and brings the state back.
    }
    if (phase === 'taking') phase = 'idle';
  }

  async function play(entry) {
    current = entry;
    phase = 'playing';
    title.textContent = entry.style === 'friend' && entry.friend_name ? entry.friend_name : entry.description;
    viewer.textContent = entry.viewer_name;
    card.dataset.entry = String(entry.id);
    card.dataset.style = entry.style;
    // The sound loads beside the image; a sound that fails never delays the alert.
    if (entry.sound_url && VOLUME > 0) {
      sound.src = entry.sound_url;
      sound.volume = VOLUME * (entry.sound_volume_percent ?? 100) / 100;
    } else {
      sound.removeAttribute('src');
    }
    // The spoken caption likewise: loaded beside the image, never waited for.
    if (entry.speech_url && VOLUME > 0) {
      speech.src = entry.speech_url;
      speech.volume = VOLUME;
    } else {
      speech.removeAttribute('src');
    }
    if (entry.image_url) {
      image.src = entry.image_url;
      // Show it once decoded, so the entrance never shows an empty frame.
      await image.decode().catch(() => {});
    } else {
      image.removeAttribute('src');
    }
    if (phase !== 'playing' || current !== entry) return;
    card.className = 'entering';
    card.hidden = false;
    log.push({ id: entry.id, request: entry.image_request_id, event: 'start', at: performance.now() });
    if (sound.getAttribute('src')) {
      sound.currentTime = 0;
      // Not awaited: the alert runs its course whether or not the sound plays.
      sound.play().then(
        () => log.push({ id: entry.id, request: entry.image_request_id, event: 'sound', at: performance.now() }),
        (error) => log.push({ id: entry.id, request: entry.image_request_id, event: 'sound-failed', reason: String(error), at: performance.now() }),
      );
    }
    if (speech.getAttribute('src')) speakAfterSound(entry);
    body.dataset.playing = String(entry.id);
    later(DURATION_MS, () => leave(true));
    react(); // a skip may have come while the image loaded
  }

  /** Reads the caption once the entrance sound is over (at once when
   *  there is none, it fails, or it runs past SPEECH_AFTER_MS), so the two
   *  never talk over each other. Nothing here can hold the alert up. */
  function speakAfterSound(entry) {
    let started = false;
    const start = () => {
      if (started || current !== entry || phase !== 'playing') return;
      started = true;
      speech.currentTime = 0;
      speech.play().then(
        () => log.push({ id: entry.id, request: entry.image_request_id, event: 'speech', at: performance.now() }),
        (error) => log.push({ id: entry.id, request: entry.image_request_id, event: 'speech-failed', reason: String(error), at: performance.now() }),
      );
    };
    if (!sound.getAttribute('src')) { start(); return; }
    sound.addEventListener('ended', start, { once: true });
    sound.addEventListener('error', start, { once: true });
    setTimeout(start, SPEECH_AFTER_MS);
  }

  /** The exit, then the next. `report`: it ran its course (not skipped). */
  function leave(report) {
    const entry = current;
    phase = 'leaving';
    card.className = 'leaving';
    if (!report) { sound.pause(); speech.pause(); } // skipped: the sounds go with it
    later(EXIT_MS, async () => {
      card.hidden = true;
      card.className = '';
      delete body.dataset.playing;
      log.push({ id: entry.id, request: entry.image_request_id, event: 'end', at: performance.now() });
      current = null;
      if (phase === 'stopped') return;
      if (report && !PREVIEW) {
        try {
          const response = await fetch(`/overlay/alerts/${entry.id}/finished?${query}`, { method: 'POST' });
          if (response.status === 401) { stop('revoked'); return; }
        } catch (error) {
          // Not recorded: the next /overlay/next ends it as interrupted.
        }
      }
      phase = 'resting';
      later(GAP_MS, () => {
        timer = null;
        if (phase !== 'resting') return;
        phase = 'idle';
        react();
      });
    });
  }

  function connect() {
    setStatus('connecting');
    source = new EventSource(`/overlay/events?${query}`);
    source.addEventListener('state', (event) => {
      state = JSON.parse(event.data);
      body.dataset.waiting = String(state.waiting);
      if (phase !== 'stopped') setStatus(state.paused ? 'paused' : 'live');
      react();
    });
    source.addEventListener('revoked', () => stop('revoked'));
    source.addEventListener('error', () => {
      if (phase === 'stopped') return;
      setStatus('reconnecting');
      // EventSource retries by itself after a dropped connection; after an
      // answer that is not a stream (401, 5xx) it gives up, so look why.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(probe, RETRY_MS);
      }
    });
  }

  async function probe() {
    try {
      const controller = new AbortController();
      const response = await fetch(`/overlay/events?${query}`, { signal: controller.signal });
      controller.abort();
      if (response.status === 401) { stop('revoked'); return; }
    } catch (error) {
      // Still away: try the stream again anyway.
    }
    connect();
  }

  if (PREVIEW) {
    state = { paused: false, on_air: null, taken: null, waiting: 1 };
    setStatus('preview');
    react();
    return;
  }
  if (!token) { stop('no-token'); return; }
  connect();
})();
