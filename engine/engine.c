/* engine.c: the engine object and its threads. Owns the audio device, the audio slot table, the network
 * thread and (through dispatch.c) the event queue and the dispatch thread.
 *
 * Threading model:
 *  - Audio thread: the device's process callback (PortAudio's callback thread; for FILE, NULL and
 *    PARLEY_AUDIO_APP the device's pacing thread, one period per period of wall time at absolute
 *    deadlines, moving its schedule rather than bursting after a stall; for PARLEY_AUDIO_APP_CALLBACK
 *    the app's own audio thread inside parley_engine_process, with no device in between). Per period,
 *    for every started call published in eng->slots:
 *    received packets are taken from the call's rx ring (SPSC, network -> audio) into its receive chain,
 *    one frame of playout is produced and summed into the device output (the sum of all calls' receive
 *    chains: with several calls this is the mesh mix), and the capture (or silence when muted) goes
 *    through the call's send chain, whose encoded packets go into the call's tx ring (SPSC, audio ->
 *    network). Every call's echo canceller is fed the whole device output (all calls' playout) at
 *    48 kHz; at other device rates each call's receive chain feeds its own canceller (linked at start,
 *    before the output resampler), so there the reference misses the other calls' audio. Calls that are members of the
 *    session (session.c) are not summed directly: their frames go through the session's mixer, which
 *    this thread owns while it is published (membership is followed from media->session_id), and its
 *    speaker ranking is published for the network thread. A room (room.c) adds a per-call playout
 *    volume, the earphone mute (the output zeroed) and capture_voice_us (when a voiced frame was last
 *    sent), all relaxed atomics. Nothing here allocates, locks or makes a
 *    system call (the monotonic clock is a vDSO read).
 *  - Network thread (one per engine): ppoll() over the wake eventfd and every call's UDP sockets, with
 *    the timeout from the nearest ICE / liveness / RTCP deadline, capped at 100 ms. While media flows
 *    it also drains the tx rings just after each audio period (the audio thread cannot wake us: that
 *    would be a system call), polling every half millisecond while a period is overdue: a packet waits
 *    a fraction of a millisecond, not up to a poll interval (which would be latency, and transit
 *    jitter the far jitter buffer absorbs). When the next period ends is predicted on the period grid,
 *    not from the last period's end: each period's end is taken relative to cycles * period, and the
 *    smallest such offset over the last 64..128 periods (a period that ran on time, with the least
 *    processing) + the next cycle's grid time is published as audio_next_end_us. A late period (the
 *    audio thread preempted, a callback delayed) therefore does not push the next drain a whole
 *    period past the catch-up period that follows it, which is what "last end + one period" did
 *    (packets held for milliseconds, and the far jitter buffer a frame longer for the rest of the
 *    call). A predicted time that passes without a new period is overdue: poll. Drift of a device
 *    clock against the monotonic clock over a block of 64 periods is negligible. Under eng->lock
 *    it services each call (call.c): STUN to the ICE agent, SRTP unprotect, RTP to the rx ring and the
 *    liveness monitor, RTCP (reports, RTT, BYE), tx ring -> RTP -> SRTP -> socket, RTCP reports, ICE
 *    and liveness timers. It also polls device events every 20 ms (device lost -> interrupted; the
 *    input file ended -> every call hung up, with PARLEY_INPUT_END_HANGUP). Events go to dispatch.c's
 *    queue.
 *  - App threads: parley_call_* functions take eng->lock (never held by the audio thread), change
 *    the call, and wake the network thread through the eventfd.
 *  - Dispatch: an internal thread, or the app's own thread through parley_engine_dispatch.
 * Time: the network thread reads parley__clock (monotonic) once per loop and passes now_us down; the
 * core objects (ICE, liveness, jitter) take injected time and are tested in simulated time on their own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_internal.h"
#include "engine/room_internal.h"
#include "transport/liveness.h"
#include "transport/rtp.h"

void parley_engine_config_init(parley_engine_config *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->audio = PARLEY_AUDIO_NONE;
  cfg->device_rate_hz = 48000;
  cfg->frame_ms = 20;
  cfg->echo_cancellation = true;
  cfg->noise_suppression = true;
  cfg->agc = false;
  cfg->opus_bitrate_bps = 32000;
  cfg->opus_fec = true;
  cfg->opus_dtx = true;
  /* Liveness defaults are the monitor's own (transport/liveness.h), in ms. */
  parley__liveness_config lc;
  parley__liveness_config_init(&lc);
  cfg->suspect_after_ms = (int)(lc.suspect_after_us / 1000);
  cfg->lost_after_ms = (int)(lc.lost_after_us / 1000);
  cfg->media_timeout_ms = (int)(lc.media_timeout_us / 1000);
  cfg->consent_expiry_ms = (int)(lc.consent_expiry_us / 1000);
  cfg->loopback_candidates = false;
  cfg->ipv6 = true;
  cfg->dispatch = PARLEY_DISPATCH_THREAD;
}

/* ---- audio thread ---- */

static void publish_stats(parley__call_media *m) {
  parley__recv_stats rs;
  parley__recv_chain_stats(m->recv, &rs);
  atomic_store_explicit(&m->jb_delay_us, (int64_t)(rs.jitter.current_delay_ms * 1000.0), memory_order_relaxed);
  atomic_store_explicit(&m->concealed, rs.jitter.concealed, memory_order_relaxed);
  uint64_t concealed_samples = rs.jitter.concealed_samples + rs.expand_samples;
  atomic_store_explicit(&m->concealed_ms, concealed_samples / (PARLEY__ENGINE_RATE_HZ / 1000),
                        memory_order_relaxed);
  atomic_store_explicit(&m->fec, rs.fec_recovered, memory_order_relaxed);
}

/* Energy voice flag for the speaker ranking of received audio: RMS above -40 dBFS. */
static bool voiced(const float *x, size_t n) {
  float acc = 0;
  for (size_t i = 0; i < n; i++) acc += x[i] * x[i];
  return acc > 1e-4f * (float)n;
}

/* Phase 1 for one call: received packets into the receive chain, one frame of playout into the sum or
 * the session mixer. */
static void audio_recv(parley_engine *e, parley__call_media *m, float *out, int64_t now, parley__mixer *mix,
                       uint32_t pid) {
  const parley__rx_item *it;
  for (int i = 0; i < PARLEY__RX_RING_SLOTS && (it = parley__ring_read_slot(m->rx)) != NULL; i++) {
    (void)parley__recv_chain_put(m->recv, it->seq, it->timestamp, it->ssrc, it->marker, it->data, it->len,
                                 it->arrival_us);
    parley__ring_release(m->rx);
  }
  float *play = e->play;
  if (parley__recv_chain_process(m->recv, now, play) == 0) {
    int vol = atomic_load_explicit(&m->volume_pct, memory_order_relaxed); /* a room member's volume */
    float g = (float)vol / 100.0f;
    if (vol != 100)
      for (size_t k = 0; k < e->frame_samples; k++) play[k] *= g;
    if (mix && pid) (void)parley__mixer_put(mix, pid, play, voiced(play, e->frame_samples));
    else
      for (size_t k = 0; k < e->frame_samples; k++) out[k] += play[k];
  }
}

/* Phase 2 for one call: the echo canceller hears the whole playout (at 48 kHz the device output itself;
 * otherwise the call's own receive chain feeds it, linked at start), then capture -> send chain -> tx. */
static void audio_send(parley_engine *e, parley__call_media *m, const float *in, const float *out, int64_t now) {
  if (e->echo_from_output) (void)parley__echo_playback(parley__send_chain_echo(m->send), out, e->frame_samples);
  const float *cap = atomic_load_explicit(&m->muted, memory_order_relaxed) ? e->silence : in;
  parley__send_packet pk[PARLEY__SEND_MAX_PACKETS];
  int n = parley__send_chain_process(m->send, cap, pk, PARLEY__SEND_MAX_PACKETS);
  uint8_t level = n > 0 ? parley__rtp_audio_level(cap, e->frame_samples) : 127;
  for (int j = 0; j < n; j++) {
    parley__tx_item *slot = parley__ring_write_slot(m->tx);
    if (!slot) {
      atomic_fetch_add_explicit(&m->tx_dropped, 1, memory_order_relaxed);
      continue;
    }
    slot->timestamp = pk[j].timestamp;
    slot->marker = pk[j].marker;
    slot->voice = pk[j].voice;
    if (pk[j].voice && cap == in) atomic_store_explicit(&e->capture_voice_us, now, memory_order_relaxed);
    slot->level = level;
    slot->len = (uint16_t)pk[j].len;
    memcpy(slot->data, pk[j].data, pk[j].len);
    parley__ring_commit(m->tx);
  }
  if (++m->frame_count % 10 == 0) publish_stats(m);
}

#define PHASE_BLOCK 64

/* Audio thread: this period ended at end_us; predicts the next one's end (arithmetic only). */
static void publish_next_end(parley_engine *e, int64_t end_us) {
  const int64_t p = (int64_t)e->cfg.frame_ms * 1000;
  int64_t k = (int64_t)atomic_load_explicit(&e->audio_cycles, memory_order_relaxed);
  int64_t off = end_us - k * p;
  if (e->phase_block_n == 0 || off < e->phase_min_cur_us) e->phase_min_cur_us = off;
  if (++e->phase_block_n == PHASE_BLOCK) {
    e->phase_min_prev_us = e->phase_min_cur_us;
    e->phase_block_n = 0;
  }
  int64_t best = e->phase_min_cur_us;
  if (k >= PHASE_BLOCK && e->phase_min_prev_us < best) best = e->phase_min_prev_us;
  atomic_store_explicit(&e->audio_next_end_us, best + (k + 1) * p, memory_order_relaxed);
}

static void audio_process(void *user, const float *in, float *out, size_t frames) {
  parley_engine *e = user;
  if (e->cfg.audio != PARLEY_AUDIO_APP_CALLBACK) PARLEY__OWNER_CHECK(&e->audio_owner, "an audio period");
  /* seq_cst pairs with parley__engine_detach_media: either it sees us busy, or we see its NULL. */
  atomic_store(&e->audio_busy, 1);
  if (frames == e->frame_samples) {
    int64_t now = parley__clock_now(&e->clock);
    parley__call_media *media[PARLEY_ENGINE_MAX_CALLS]; /* this period's view of the slots */
    parley__mixer *mix = atomic_load(&e->mixer);
    unsigned gen = atomic_load(&e->mixer_gen);
    if (gen != e->mixer_gen_seen) { /* a new (or no) mixer: it holds none of our participants */
      memset(e->slot_pid, 0, sizeof e->slot_pid);
      e->mixer_gen_seen = gen;
    }
    for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++) {
      parley__call_media *m = atomic_load(&e->slots[i]);
      if (mix) { /* follow session membership: the mixer belongs to this thread */
        uint32_t want = m ? atomic_load_explicit(&m->session_id, memory_order_relaxed) : 0;
        if (want != e->slot_pid[i]) {
          if (e->slot_pid[i]) (void)parley__mixer_remove(mix, e->slot_pid[i]);
          if (want && parley__mixer_add(mix, want) != 0) want = 0;
          e->slot_pid[i] = want;
        }
      }
      media[i] = m;
      if (m) audio_recv(e, m, out, now, mix, e->slot_pid[i]);
    }
    if (mix) {
      if (parley__mixer_run(mix) == 1) {
        uint32_t ids[PARLEY_SESSION_MAX_SPEAKERS];
        int n = parley__mixer_speakers(mix, ids, PARLEY_SESSION_MAX_SPEAKERS);
        parley__ranking_publish(&e->speakers, ids, n < 0 ? 0 : (unsigned)n);
      }
      const float *full = parley__mixer_full(mix);
      for (size_t k = 0; k < frames; k++) out[k] += full[k];
    }
    for (size_t k = 0; k < frames; k++) out[k] = out[k] > 1.0f ? 1.0f : out[k] < -1.0f ? -1.0f : out[k];
    /* A room's earphone mute: nothing is played, and the echo canceller hears that silence. */
    if (atomic_load_explicit(&e->playout_muted, memory_order_relaxed)) memset(out, 0, frames * sizeof *out);
    for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++)
      if (media[i]) audio_send(e, media[i], in, out, now);
  }
  /* After the tx rings were filled: the network thread drains them right after this, and after the
   * next period's predicted end (see the top comment). */
  publish_next_end(e, parley__clock_now(&e->clock));
  atomic_fetch_add(&e->audio_cycles, 1);
  atomic_store(&e->audio_busy, 0);
}

int parley__engine_attach_media(parley_engine *e, parley__call_media *m) {
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++) {
    parley__call_media *expect = NULL;
    /* release: the chains and rings are fully built before the audio thread can see them. */
    if (atomic_compare_exchange_strong(&e->slots[i], &expect, m)) return i;
  }
  return PARLEY_EFULL;
}

void parley__engine_detach_media(parley_engine *e, int slot) {
  if (slot >= 0 && slot < PARLEY_ENGINE_MAX_CALLS) atomic_store(&e->slots[slot], NULL);
}

/* Whether the audio period that was in progress at cycle c (if any) has ended. seq_cst pairs with
 * audio_process: a period that starts after the unpublishing store loads the new pointer. */
static bool period_over(parley_engine *e, uint64_t c) {
  return !atomic_load(&e->audio_busy) || atomic_load(&e->audio_cycles) != c;
}

void parley__engine_retire(parley_engine *e, void *p, void (*free_fn)(void *)) {
  if (!p) return;
  uint64_t c = atomic_load(&e->audio_cycles);
  /* A period lasts a few ms: wait that long before parking, so the common case frees at once. */
  for (int i = 0; i < 3 && !period_over(e, c); i++) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (period_over(e, c)) {
    free_fn(p);
  } else if (e->n_retired < PARLEY__RETIRED_MAX) {
    e->retired[e->n_retired++] = (parley__retired){p, free_fn, c};
  } else {
    e->retire_leaks++; /* stalled through that many teardowns: leak rather than free under it */
  }
}

void parley__engine_reap(parley_engine *e, bool audio_stopped) {
  int kept = 0;
  for (int i = 0; i < e->n_retired; i++) {
    parley__retired r = e->retired[i];
    if (audio_stopped || period_over(e, r.cycle)) r.free_fn(r.p);
    else e->retired[kept++] = r;
  }
  e->n_retired = kept;
}

/* ---- device events (network thread, under lock) ---- */

#define INPUT_END_TAIL_US 300000 /* PARLEY_INPUT_END_HANGUP: the input's last audio reaches the peer's ear */

/* PARLEY_INPUT_END_HANGUP: once the tail after the input's end is over, every call is hung up.
 * Returns the deadline to wake for (INT64_MAX: none). */
static int64_t input_end_hangup(parley_engine *e, int64_t now) {
  if (!e->input_end_hangup_us) return INT64_MAX;
  if (now < e->input_end_hangup_us) return e->input_end_hangup_us;
  e->input_end_hangup_us = 0;
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++)
    if (e->calls[i] && !parley__call_is_hungup(e->calls[i])) (void)parley__call_hangup_locked(e->calls[i]);
  return INT64_MAX;
}

static void device_event(void *user, parley__device_event ev, int err) {
  parley_engine *e = user;
  PARLEY__ENGINE_NET_THREAD(e);
  PARLEY__ENGINE_LOCKED(e);
  if (ev == PARLEY__DEVICE_EV_FINISHED && e->cfg.input_file_end == PARLEY_INPUT_END_HANGUP) {
    /* Not at once: the file's last frames are still in the send chain, on the wire and in the peer's
     * jitter buffer, and a BYE ends the peer's playout. */
    e->input_end_hangup_us = parley__clock_now(&e->clock) + INPUT_END_TAIL_US;
    return;
  }
  if (ev != PARLEY__DEVICE_EV_LOST && ev != PARLEY__DEVICE_EV_BUSY) return;
  parley__event iev;
  memset(&iev, 0, sizeof iev);
  iev.kind = PARLEY_EVENT_INTERRUPTED;
  iev.now_us = parley__clock_now(&e->clock);
  iev.code = ev == PARLEY__DEVICE_EV_LOST ? PARLEY_INTERRUPT_DEVICE_LOST : PARLEY_INTERRUPT_DEVICE_BUSY;
  snprintf(iev.message, sizeof iev.message, "audio device %s (%s)",
           ev == PARLEY__DEVICE_EV_LOST ? "lost" : "busy", parley_strerror(err));
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++)
    if (e->calls[i] && !parley__call_is_hungup(e->calls[i])) parley__engine_post(e, e->calls[i], &iev);
}

/* ---- network thread ---- */

void parley__engine_wake(parley_engine *e) {
  uint64_t one = 1;
  ssize_t r = write(e->wake_fd, &one, sizeof one);
  (void)r; /* EAGAIN: the counter is already non-zero, the thread will wake */
}

static void *net_main(void *arg) {
  parley_engine *e = arg;
  struct pollfd fds[2 + PARLEY_ENGINE_MAX_CALLS * PARLEY__CALL_MAX_SOCKS];
  int sock_fds[PARLEY__CALL_MAX_SOCKS];
  while (!atomic_load(&e->net_stop)) {
    pthread_mutex_lock(&e->lock);
    int64_t now = parley__clock_now(&e->clock);
    int64_t deadline = now + 100000;
    if (now >= e->next_dev_poll_us) {
      if (e->dev) (void)parley__device_poll_events(e->dev, now);
      e->next_dev_poll_us = now + 20000;
    }
    if (e->next_dev_poll_us < deadline) deadline = e->next_dev_poll_us;
    int64_t hangup_at = input_end_hangup(e, now);
    if (hangup_at < deadline) deadline = hangup_at;
    nfds_t n = 0;
    fds[n++] = (struct pollfd){.fd = e->wake_fd, .events = POLLIN};
    if (e->netwatch_fd >= 0) fds[n++] = (struct pollfd){.fd = e->netwatch_fd, .events = POLLIN};
    for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++) {
      parley_call *c = e->calls[i];
      if (!c) continue;
      int64_t d = parley__call_net_deadline(c, now);
      if (d < deadline) deadline = d;
      int k = parley__call_fds(c, sock_fds, PARLEY__CALL_MAX_SOCKS);
      for (int j = 0; j < k; j++) fds[n++] = (struct pollfd){.fd = sock_fds[j], .events = POLLIN};
    }
    pthread_mutex_unlock(&e->lock);

    int64_t wait_us = deadline - now;
    if (wait_us < 0) wait_us = 0;
    if (wait_us > 100000) wait_us = 100000;
    struct timespec tmo = {(time_t)(wait_us / 1000000), (long)(wait_us % 1000000) * 1000};
    (void)ppoll(fds, n, &tmo, NULL);
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      ssize_t r = read(e->wake_fd, &v, sizeof v);
      (void)r;
    }

    pthread_mutex_lock(&e->lock);
    now = parley__clock_now(&e->clock);
    parley__netwatch_service(e, now); /* before the calls: they gather again */
    /* Sockets are read by trying every one (non-blocking): cheaper than mapping revents back across a
     * window in which calls may have come or gone. */
    for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++)
      if (e->calls[i]) parley__call_net_service(e->calls[i], now);
    parley__session_poll(e);
    parley__room_poll(e, now);
    parley__engine_reap(e, false);
    pthread_mutex_unlock(&e->lock);
  }
  return NULL;
}

/* ---- engine ---- */

char *parley__dup_or_null(const char *s, bool *oom) {
  if (!s) return NULL;
  char *d = strdup(s);
  if (!d) *oom = true;
  return d;
}

static int validate(const parley_engine_config *c) {
  if (c->audio < PARLEY_AUDIO_NONE || c->audio > PARLEY_AUDIO_APP_CALLBACK) return PARLEY_EINVAL;
  if (c->frame_ms != 5 && c->frame_ms != 10 && c->frame_ms != 20) return PARLEY_EINVAL;
  if (c->device_rate_hz * c->frame_ms % 1000 != 0) return PARLEY_EINVAL; /* 5 ms at 44.1 kHz */
  if (!parley__device_rate_supported(c->device_rate_hz)) return PARLEY_EINVAL;
  if (c->opus_bitrate_bps < 6000 || c->opus_bitrate_bps > 510000) return PARLEY_EINVAL;
  if (c->echo_tail_ms != 0 && (c->echo_tail_ms < 10 || c->echo_tail_ms > 2000)) return PARLEY_EINVAL;
  if (c->echo_delay_ms < 0 || c->echo_delay_ms > 1000) return PARLEY_EINVAL;
  if (c->suspect_after_ms <= 0 || c->lost_after_ms <= c->suspect_after_ms || c->media_timeout_ms < 0 ||
      c->consent_expiry_ms <= 0)
    return PARLEY_EINVAL;
  if (c->dispatch != PARLEY_DISPATCH_THREAD && c->dispatch != PARLEY_DISPATCH_APP) return PARLEY_EINVAL;
  if (c->input_file_end < PARLEY_INPUT_END_SILENCE || c->input_file_end > PARLEY_INPUT_END_HANGUP)
    return PARLEY_EINVAL;
  return 0;
}

static parley__device *open_device(parley_engine *e, size_t period, int *err) {
  static const parley__device_backend map[] = {
      [PARLEY_AUDIO_NONE] = PARLEY__DEVICE_NULL,
      [PARLEY_AUDIO_DEVICE] = PARLEY__DEVICE_PORTAUDIO,
      [PARLEY_AUDIO_FILE] = PARLEY__DEVICE_FILE,
      [PARLEY_AUDIO_APP] = PARLEY__DEVICE_APP,
      [PARLEY_AUDIO_APP_CALLBACK] = PARLEY__DEVICE_NULL, /* stepped by nobody: parley_engine_process */
  };
  parley__device_config dc;
  parley__device_config_init(&dc, map[e->cfg.audio]);
  dc.sample_rate_hz = e->cfg.device_rate_hz;
  dc.channels = 1;
  dc.period_frames = period;
  dc.input_name = e->str_input_device;
  dc.output_name = e->str_output_device;
  dc.input_path = e->str_input_file;
  dc.output_path = e->str_output_file;
  dc.input_loop = e->cfg.input_file_end == PARLEY_INPUT_END_LOOP;
  dc.input_hold = e->cfg.input_file_at_media;
  dc.pacing = e->cfg.audio == PARLEY_AUDIO_APP_CALLBACK ? PARLEY__DEVICE_PACE_STEPPED : PARLEY__DEVICE_PACE_REALTIME;
  dc.app_trim_backlog = true; /* APP: a backlog the app starts with would be latency for the whole call */
  dc.process = audio_process;
  dc.event = device_event;
  dc.user = e;
  return parley__device_new(&dc, err);
}

int parley_engine_rate_hz(const parley_engine *eng) { return eng ? eng->rate_hz : PARLEY_EINVAL; }

int parley_engine_new(const parley_engine_config *cfg, parley_engine **out) {
  if (out) *out = NULL;
  if (!cfg || !out) return PARLEY_EINVAL;
  int err = validate(cfg);
  if (err) return err;

  parley_engine *e = calloc(1, sizeof *e);
  if (!e) return PARLEY_ENOMEM;
  e->cfg = *cfg;
  e->wake_fd = -1;
  e->netwatch_fd = -1;
  e->event_fd = -1;
  bool oom = false;
  e->str_input_device = parley__dup_or_null(cfg->input_device, &oom);
  e->str_output_device = parley__dup_or_null(cfg->output_device, &oom);
  e->str_input_file = parley__dup_or_null(cfg->input_file, &oom);
  e->str_output_file = parley__dup_or_null(cfg->output_file, &oom);
  e->cfg.input_device = e->str_input_device;
  e->cfg.output_device = e->str_output_device;
  e->cfg.input_file = e->str_input_file;
  e->cfg.output_file = e->str_output_file;
  e->cfg.stun_server = NULL; /* parsed (below); the strings are not kept */
  e->cfg.ice_servers = NULL;
  e->cfg.ice_server_count = 0;
  e->cfg.turn_ca_file = NULL;
  e->clock = parley__clock_monotonic();
  e->next_serial = 1;
  pthread_mutex_init(&e->lock, NULL);
  e->locked.lock = &e->lock;
  pthread_mutex_init(&e->ev_lock, NULL);
  pthread_cond_init(&e->ev_cond, NULL);
  if (oom) {
    err = PARLEY_ENOMEM;
    goto fail;
  }
  err = parley__engine_ice_servers(e, cfg);
  if (err) goto fail;
  err = parley__call_cert_init(e);
  if (err) goto fail;

  /* The device: the period is one chain frame at the device's actual rate (a file's own rate). */
  size_t period = (size_t)cfg->device_rate_hz * (size_t)cfg->frame_ms / 1000;
  e->dev = open_device(e, period, &err);
  if (!e->dev) goto fail;
  e->rate_hz = parley__device_rate_hz(e->dev);
  e->frame_samples = (size_t)e->rate_hz * (size_t)cfg->frame_ms / 1000;
  e->echo_from_output = cfg->echo_cancellation && e->rate_hz == PARLEY__ENGINE_RATE_HZ;
  if (parley__device_period_frames(e->dev) != e->frame_samples) {
    parley__device_free(e->dev);
    e->dev = open_device(e, e->frame_samples, &err);
    if (!e->dev) goto fail;
  }
  e->play = calloc(e->frame_samples, sizeof(float));
  e->silence = calloc(e->frame_samples, sizeof(float));
  if (!e->play || !e->silence) {
    err = PARLEY_ENOMEM;
    goto fail;
  }

  e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->wake_fd < 0) {
    err = PARLEY_ENETWORK;
    goto fail;
  }
  e->netwatch_fd = parley__netwatch_open(); /* -1: no rtnetlink here, the app's hint still works */
  if (cfg->dispatch == PARLEY_DISPATCH_APP) {
    e->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->event_fd < 0) {
      err = PARLEY_ENETWORK;
      goto fail;
    }
  }
  err = parley__dispatch_start(e);
  if (err) goto fail;
  /* A thread that fails to start is PARLEY_ENOMEM throughout the engine (pthread_create: EAGAIN, no
   * memory for its stack or bookkeeping). */
  if (pthread_create(&e->net, NULL, net_main, e) != 0) {
    err = PARLEY_ENOMEM;
    goto fail;
  }
  e->net_running = true;

  /* The network thread polls device events under the lock: start/stop serialise with it there. */
  pthread_mutex_lock(&e->lock);
  err = parley__device_start(e->dev);
  pthread_mutex_unlock(&e->lock);
  if (err) goto fail;
  *out = e;
  return 0;
fail:
  parley_engine_free(e);
  return err;
}

void parley_engine_free(parley_engine *e) {
  if (!e) return;
  if (parley__dispatch_on_dispatch_thread(e)) return; /* documented: not from a listener */
  /* The dispatch thread first: once joined, no listener can be running on a call freed below. Then the
   * calls (they send BYE through the network state), then the audio and network threads. */
  parley__dispatch_stop(e);
  parley__room_destroy(e); /* its backend frees its calls and the session it made */
  pthread_mutex_lock(&e->lock);
  parley__session_destroy(e);
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++) {
    parley_call *c = e->calls[i];
    if (!c) continue;
    e->calls[i] = NULL;
    parley__call_destroy(c);
  }
  pthread_mutex_unlock(&e->lock);
  if (e->dev) {
    pthread_mutex_lock(&e->lock);
    (void)parley__device_stop(e->dev);
    pthread_mutex_unlock(&e->lock);
  }
  if (e->net_running) {
    atomic_store(&e->net_stop, true);
    parley__engine_wake(e);
    pthread_join(e->net, NULL);
  }
  parley__dispatch_stop(e);
  parley__engine_reap(e, true); /* no audio period runs any more */
  parley__device_free(e->dev);
  parley__call_cert_free(e);
  parley__engine_ice_servers_free(e);
  if (e->wake_fd >= 0) close(e->wake_fd);
  if (e->netwatch_fd >= 0) close(e->netwatch_fd);
  if (e->event_fd >= 0) close(e->event_fd);
  free(e->play);
  free(e->silence);
  free(e->str_input_device);
  free(e->str_output_device);
  free(e->str_input_file);
  free(e->str_output_file);
  pthread_mutex_destroy(&e->lock);
  pthread_mutex_destroy(&e->ev_lock);
  pthread_cond_destroy(&e->ev_cond);
  free(e);
}

int parley_engine_push_capture(parley_engine *eng, const float *samples, size_t frames) {
  if (!eng || (!samples && frames)) return PARLEY_EINVAL;
  if (eng->cfg.audio != PARLEY_AUDIO_APP) return PARLEY_ESTATE;
  return parley__device_app_push(eng->dev, samples, frames);
}

int parley_engine_pull_playout(parley_engine *eng, float *samples, size_t frames) {
  if (!eng || (!samples && frames)) return PARLEY_EINVAL;
  if (eng->cfg.audio != PARLEY_AUDIO_APP) return PARLEY_ESTATE;
  return parley__device_app_pull(eng->dev, samples, frames);
}

int parley_engine_process(parley_engine *eng, const float *capture, float *playout, size_t frames) {
  if (!eng || !playout) return PARLEY_EINVAL;
  if (eng->cfg.audio != PARLEY_AUDIO_APP_CALLBACK) return PARLEY_ESTATE;
  if (frames != eng->frame_samples) return PARLEY_EINVAL;
  memset(playout, 0, frames * sizeof *playout); /* audio_process sums the calls into it */
  audio_process(eng, capture ? capture : eng->silence, playout, frames);
  return 0;
}
