// call.js: the call page's logic. A WHIP client (RFC 9725) for parley-call serve: getUserMedia, one
// RTCPeerConnection, POST the offer to /whip, set the answer, PATCH late candidates, DELETE to hang up.
// Level meters (WebAudio analysers on the microphone and on parley's track), and one timeline with the
// browser's RTCPeerConnection state changes beside parley's events (Server-Sent Events).
// ?auto=1&seconds=N: call on load, hang up after N seconds and POST a JSON report to /report: both
// timelines (browser: ms since the offer was sent, t0Wall its Unix ms; parley: ms since it arrived, and
// Unix ms), the level envelopes (RMS per 20 ms, dBFS), the RTP counters and any script errors.
// ?restart=S: S seconds into the call, restart ICE through WHIP (PATCH If-Match "*", RFC 9725); the
// report says when the answer came and when the browser was connected again.
// ?raw=1: the microphone without the browser's echo cancellation, noise suppression and gain control
// (tests compare what parley hears with the file behind a fake microphone).
'use strict';

const params = new URLSearchParams(location.search);
const auto = params.get('auto') === '1';
const autoSeconds = Math.min(Math.max(Number(params.get('seconds')) || 5, 1), 300);
const rawMic = params.get('raw') === '1';
const restartAfter = Number(params.get('restart')) || 0;
const ENVELOPE_MS = 20;
const GATHER_WAIT_MS = 1500; // the offer waits this long for the browser's candidates; later ones are PATCHed

const $ = (id) => document.getElementById(id);
let call = null; // the one call: {pc, stream, location, etag, events, t0, ...}
const errors = [];
let reported = false;

window.addEventListener('error', (e) => errors.push(String(e.message || e)));
window.addEventListener('unhandledrejection', (e) => errors.push(String(e.reason && e.reason.message || e.reason)));

function setState(text, kind) {
  const el = $('state');
  el.textContent = text;
  el.className = kind || '';
}

// One timeline row. side: 'browser' or 'parley'; t: ms on that side's clock.
function addRow(side, t, text, alarm) {
  const rec = { side, t: Math.round(t), text };
  if (call && side === 'browser') call.timeline.push(rec); // parley's are in call.parley
  const tr = document.createElement('tr');
  if (alarm) tr.className = 'alarm';
  tr.innerHTML = '<td class="t"></td><td class="browser"></td><td class="parley"></td>';
  tr.children[0].textContent = rec.t;
  tr.children[side === 'browser' ? 1 : 2].textContent = text;
  // Keep the table in time order: parley's rows arrive late over the event stream.
  const body = $('timeline');
  let before = null;
  for (const row of body.children) {
    if (Number(row.children[0].textContent) > rec.t) { before = row; break; }
  }
  body.insertBefore(tr, before);
}

function browserEvent(text, alarm) {
  addRow('browser', call ? performance.now() - call.t0 : 0, text, alarm);
}

// ---- levels --------------------------------------------------------------------------------------------

function meter(ctx, stream, fillId, dbId, envelope) {
  const src = ctx.createMediaStreamSource(stream);
  const an = ctx.createAnalyser();
  an.fftSize = 2048;
  src.connect(an);
  const buf = new Float32Array(an.fftSize);
  const samples = Math.round(ctx.sampleRate * ENVELOPE_MS / 1000);
  return setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let s = 0;
    for (let i = buf.length - samples; i < buf.length; i++) s += buf[i] * buf[i];
    const db = s > 0 ? 10 * Math.log10(s / samples) : -120;
    envelope.push(Math.round(Math.max(db, -120) * 10) / 10);
    $(fillId).style.width = Math.max(0, Math.min(100, (db + 70) / 70 * 100)) + '%';
    $(dbId).textContent = db > -120 ? db.toFixed(0) + ' dBFS' : '–';
  }, ENVELOPE_MS);
}

// ---- parley's events -------------------------------------------------------------------------------------

const ALARMS = /interrupted|disconnected|failed|track-stopped|closed/;

function followEvents(c, url) {
  const es = new EventSource(url);
  c.events = es;
  es.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { errors.push('bad event: ' + m.data); return; }
    c.parley.push(ev);
    addRow('parley', ev.t, ev.event === 'server' ? '(server) ' + ev.text : ev.text, ALARMS.test(ev.text));
    if (/interrupted/.test(ev.text)) setState('parley hears nothing from us: interrupted', 'warn');
    if (/resumed/.test(ev.text)) setState('in call', 'good');
  };
  es.onerror = () => {
    if (c.ended) return;
    if (es.readyState === EventSource.CLOSED) {
      browserEvent('parley\'s event stream closed', true);
    } else { // the browser retries by itself
      c.streamWasLost = true;
      browserEvent('parley unreachable: event stream lost, retrying', true);
      setState('parley unreachable', 'bad');
    }
  };
  es.onopen = () => {
    if (!c.streamWasLost) return;
    c.streamWasLost = false;
    browserEvent('parley\'s event stream is back');
    setState('parley reachable again', 'warn');
  };
}

// ---- the call -------------------------------------------------------------------------------------------

function waitGathering(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, GATHER_WAIT_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
    });
  });
}

async function patchCandidate(c, cand) {
  if (!c.location || c.ended || c.restart && !c.restart.answeredAt) { c.pending.push(cand); return; }
  const frag = cand ? 'a=candidate:' + cand.candidate.replace(/^candidate:/, '') + '\r\n' : 'a=end-of-candidates\r\n';
  const mid = 'a=mid:' + ((cand && cand.sdpMid) || '0') + '\r\n';
  try {
    const r = await fetch(c.location, {
      method: 'PATCH', body: mid + frag,
      headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': c.etag || '*' },
    });
    if (r.status !== 204) browserEvent('PATCH ' + r.status + ': ' + (await r.text()).trim());
  } catch (e) {
    browserEvent('PATCH failed: ' + e.message, true);
  }
}

async function startCall() {
  $('call').disabled = true;
  const c = call = {
    t0: performance.now(), timeline: [], parley: [], micEnv: [], remoteEnv: [], pending: [],
    timers: [], ended: false, error: null, location: null, etag: null, events: null,
  };
  $('timeline').textContent = '';
  try {
    setState('asking for the microphone');
    const audio = rawMic ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : true;
    c.stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
    c.ctx = new AudioContext();
    c.ctx.resume().catch(() => {});
    c.timers.push(meter(c.ctx, c.stream, 'mic-fill', 'mic-db', c.micEnv));
    const pc = c.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    for (const kind of ['connectionState', 'iceConnectionState', 'signalingState', 'iceGatheringState']) {
      const ev = kind.toLowerCase().replace('state', '') + 'statechange';
      pc.addEventListener(ev, () => {
        const v = pc[kind];
        browserEvent(kind + ' ' + v, v === 'disconnected' || v === 'failed');
        if (kind === 'connectionState') onConnectionState(c, v);
      });
    }
    pc.onicecandidate = (e) => { if (c.posted) patchCandidate(c, e.candidate); };
    pc.ontrack = (e) => {
      browserEvent('track from parley (' + e.track.kind + ')');
      const remote = e.streams[0] || new MediaStream([e.track]);
      $('remote').srcObject = remote; // Chrome feeds WebAudio from a remote track only while it plays
      c.timers.push(meter(c.ctx, remote, 'remote-fill', 'remote-db', c.remoteEnv));
    };
    for (const t of c.stream.getAudioTracks()) pc.addTrack(t, c.stream);
    await pc.setLocalDescription(await pc.createOffer());
    setState('gathering candidates');
    await waitGathering(pc);
    c.t0 = performance.now(); // both clocks start at the offer
    c.timeline.length = 0;
    $('timeline').textContent = '';
    browserEvent('POST /whip (offer, ' + pc.localDescription.sdp.length + ' bytes)');
    setState('calling');
    c.posted = true;
    const r = await fetch('/whip', { method: 'POST', body: pc.localDescription.sdp, headers: { 'Content-Type': 'application/sdp' } });
    const body = await r.text();
    if (r.status !== 201) throw new Error('parley refused the call: HTTP ' + r.status + ': ' + body.trim());
    c.location = new URL(r.headers.get('Location'), location.href).href;
    c.etag = r.headers.get('ETag');
    browserEvent('201 Created ' + new URL(c.location).pathname);
    const id = c.location.split('/').pop();
    followEvents(c, '/events/' + id);
    c.answer = body;
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    for (const cand of c.pending.splice(0)) patchCandidate(c, cand);
    $('hangup').disabled = false;
    setState('connecting');
  } catch (e) {
    c.error = e.message || String(e);
    browserEvent('failed: ' + c.error, true);
    setState(c.error, 'bad');
    await endCall('error');
  }
}

const sdpLine = (sdp, name) => (sdp.match(new RegExp('^a=' + name + ':(.*)$', 'm')) || [])[1];
const candidateLines = (sdp) => sdp.split(/\r?\n/).filter((l) => /^a=(candidate:|end-of-candidates)/.test(l));

// An ICE restart over WHIP: new credentials and every candidate in one fragment; parley's fragment back
// (its credentials and candidates) replaces those of its answer, with the new ETag for later PATCHes.
async function restartIce(c) {
  const t = () => Math.round(performance.now() - c.t0);
  c.restart = { at: t() };
  browserEvent('ICE restart: PATCH If-Match *');
  try {
    await c.pc.setLocalDescription(await c.pc.createOffer({ iceRestart: true }));
    await waitGathering(c.pc);
    const sdp = c.pc.localDescription.sdp;
    const frag = ['a=ice-ufrag:' + sdpLine(sdp, 'ice-ufrag'), 'a=ice-pwd:' + sdpLine(sdp, 'ice-pwd'),
      'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:' + (sdpLine(sdp, 'mid') || '0'), ...candidateLines(sdp)].join('\r\n') + '\r\n';
    const r = await fetch(c.location, {
      method: 'PATCH', body: frag, headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' },
    });
    const body = await r.text();
    c.restart.status = r.status;
    if (r.status !== 200) throw new Error('HTTP ' + r.status + ': ' + body.trim());
    c.etag = r.headers.get('ETag');
    const answer = c.answer.split(/\r?\n/).filter((l) => l && !/^a=(candidate:|end-of-candidates)/.test(l))
      .map((l) => l.replace(/^a=ice-ufrag:.*/, 'a=ice-ufrag:' + sdpLine(body, 'ice-ufrag'))
        .replace(/^a=ice-pwd:.*/, 'a=ice-pwd:' + sdpLine(body, 'ice-pwd')));
    await c.pc.setRemoteDescription({ type: 'answer', sdp: answer.concat(candidateLines(body)).join('\r\n') + '\r\n' });
    c.restart.answeredAt = t();
    browserEvent('ICE restart answered (' + candidateLines(body).length + ' candidate lines)');
    watchRestart(c, sdpLine(sdp, 'ice-ufrag'), t);
    const sent = new Set(candidateLines(sdp));
    for (const cand of c.pending.splice(0)) // only those the fragment did not carry
      if (!cand || !sent.has('a=candidate:' + cand.candidate.replace(/^candidate:/, ''))) patchCandidate(c, cand);
  } catch (e) {
    c.restart.error = e.message || String(e);
    browserEvent('ICE restart failed: ' + c.restart.error, true);
  }
}

// The restart is done when the transport's selected pair runs on the new credentials (the connection
// state stays 'connected' throughout: the old pair carries the call meanwhile). Polls for up to 10 s.
function watchRestart(c, ufrag, t) {
  let polls = 0;
  const timer = setInterval(async () => {
    if (++polls > 200 || c.ended) { clearInterval(timer); return; }
    (await c.pc.getStats()).forEach((s) => {
      if (s.type === 'transport' && s.iceLocalUsernameFragment === ufrag && s.selectedCandidatePairId &&
          c.restart.connectedAt === undefined) {
        c.restart.connectedAt = t();
        browserEvent('ICE restart done: the selected pair uses the new credentials');
        clearInterval(timer);
      }
    });
  }, 50);
  c.timers.push(timer);
}

function onConnectionState(c, v) {
  if (v === 'connected' && restartAfter > 0 && !c.restartTimer)
    c.restartTimer = setTimeout(() => { if (!c.ended) restartIce(c); }, restartAfter * 1000);
  if (v === 'connected') setState('in call', 'good');
  else if (v === 'disconnected') setState('network trouble: the browser lost parley', 'warn');
  else if (v === 'failed') setState('call failed: no path to parley', 'bad');
}

async function endCall(why) {
  const c = call;
  if (!c || c.ended) return;
  c.ended = true;
  $('hangup').disabled = true;
  if (c.location) {
    try {
      const r = await fetch(c.location, { method: 'DELETE' });
      browserEvent('DELETE ' + r.status);
    } catch (e) {
      browserEvent('DELETE failed: ' + e.message + ' (parley unreachable)', true);
    }
  }
  if (c.events) c.events.close();
  for (const t of c.timers) clearInterval(t);
  if (c.pc) c.pc.close();
  if (c.stream) for (const t of c.stream.getTracks()) t.stop();
  if (c.ctx) c.ctx.close().catch(() => {});
  browserEvent('hung up (' + why + ')');
  if (!c.error) setState('hung up');
  $('call').disabled = false;
}

// ---- ?auto=1 --------------------------------------------------------------------------------------------

async function inboundStats(pc) {
  const out = {};
  if (!pc) return out;
  try {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio')
        Object.assign(out, { packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived,
          packetsLost: s.packetsLost, jitter: s.jitter, totalAudioEnergy: s.totalAudioEnergy,
          concealedSamples: s.concealedSamples, totalSamplesReceived: s.totalSamplesReceived });
      if (s.type === 'outbound-rtp' && s.kind === 'audio')
        Object.assign(out, { packetsSent: s.packetsSent, bytesSent: s.bytesSent });
    });
  } catch (e) { errors.push('getStats: ' + e.message); }
  return out;
}

async function report() {
  if (reported) return;
  reported = true;
  const c = call || { timeline: [], parley: [], micEnv: [], remoteEnv: [] };
  const rep = {
    ok: !c.error && c.pc && c.pc.connectionState === 'connected', error: c.error || null, seconds: autoSeconds,
    call: c.location ? new URL(c.location).pathname : null,
    t0Wall: c.t0 ? Math.round(performance.timeOrigin + c.t0) : null, // Unix ms of the browser's t = 0
    connectionState: c.pc ? c.pc.connectionState : null, iceConnectionState: c.pc ? c.pc.iceConnectionState : null,
    stats: await inboundStats(c.pc), envelopeMs: ENVELOPE_MS, micDb: c.micEnv, remoteDb: c.remoteEnv,
    timeline: c.timeline, parley: c.parley, restart: c.restart || null, errors, userAgent: navigator.userAgent,
  };
  try {
    await fetch('/report', { method: 'POST', body: JSON.stringify(rep), headers: { 'Content-Type': 'application/json' } });
  } catch (e) { errors.push('report: ' + e.message); }
  document.title = 'parley: reported';
}

$('call').onclick = startCall;
$('hangup').onclick = () => endCall('hang-up button');
// Leaving the page hangs up too (keepalive lets the DELETE outlive the page).
window.addEventListener('pagehide', () => {
  if (call && call.location && !call.ended) fetch(call.location, { method: 'DELETE', keepalive: true });
});

if (auto) {
  setTimeout(async () => { await report(); await endCall('auto'); }, autoSeconds * 1000);
  startCall().then(async () => { if (call && call.error) { await report(); } });
}
