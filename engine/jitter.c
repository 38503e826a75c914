/* jitter.c: the adaptive jitter buffer (see jitter.h for the model). Owns a packet pool, a ts-sorted
 * index of the buffered packets, the relative-transit window and one output scratch buffer, all
 * allocated at create. put() and get() run on one thread (the audio thread) and never allocate, lock
 * or block; their work is bounded by the pool capacity and the window size.
 *
 * Timeline: r = arrival_us - ref_us - media_us(ts - ref_ts) is a packet's relative transit (ref is the
 * stream's first packet). The play position play_ts and the tick time give the playout offset
 * cur = now_us - ref_us - media_us(play_ts); the packet at play_ts is on time iff r <= cur. The target
 * offset T is the (1 - late_target) quantile of r over the window. Growth: a missing frame while
 * cur < T holds the position (conceal now, play the packet next tick). Shrink: skip a frame when
 * cur - frame >= T: free in DTX silence and when the frame is missing anyway; during talk by dropping
 * one packet, after the condition held for a while and at most once per talk_shrink_interval.
 *
 * Sequence numbers and timestamps are unwrapped to 64 bits against the highest seen so far.
 */
#include "engine/jitter.h"

#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

#define SHRINK_HOLD_TICKS 25 /* 0.5 s at 20 ms: the excess must persist before we drop talk audio */
/* Every packet late for this long (and at least LATE_RUN_PACKETS of them): the timeline is wrong
 * (e.g. the sender paused its timestamps), not the network: resync. A delay spike's burst arrives at
 * once and never lasts this long. */
#define LATE_RUN_US 1000000
#define LATE_RUN_PACKETS 10
/* Timescaled: this many frames above the low target, accelerate may cut more than half a frame. */
#define FAST_ACCEL_FRAMES 3

typedef struct slot {
  int64_t seq, ts, arrival_us;
  uint32_t len;
  bool marker;
  bool fec; /* carries in-band FEC for the frame before it */
} slot;

struct parley__jitter {
  parley__jitter_config cfg;
  int64_t frame_us, resync_us, min_delay_us, max_delay_us, shrink_interval_us;
  /* Pool: slots + payload bytes, a free stack, and the buffered slots ordered by ts. */
  slot *slots;
  uint8_t *pool;
  uint32_t *free_stack;
  uint32_t n_free;
  uint32_t *order;
  uint32_t n_buf;
  uint8_t *out_buf;
  /* Relative-transit window: ring in arrival order plus a sorted copy for quantiles. */
  int64_t *win_ring, *win_sorted;
  uint32_t n_win, win_pos;
  /* Stream. */
  bool have_stream;
  uint32_t ssrc;
  int64_t max_seq, max_ts, ref_ts, ref_us;
  bool started;
  int64_t play_ts;
  bool have_last;
  int64_t last_seq, last_ts; /* last frame consumed (played or FEC-recovered) */
  int64_t played_hi;
  uint64_t played_mask; /* bit i: seq played_hi - i was played */
  bool in_dtx;
  uint32_t gap_conceals;
  uint64_t gap_expands, gap_expand_samples; /* timescaled: EXPAND with nothing later buffered */
  bool pending_reset;
  uint32_t late_run;
  int64_t late_run_start_us;
  int64_t last_shrink_us;
  uint32_t shrink_ticks;
  int64_t cur_us, target_us; /* for stats, relative to the window's fastest packet */
  bool expanded;             /* timescaled: the frame at play_ts was waited for with EXPAND */
  int64_t expand_run;        /* timescaled: samples expanded since the last frame played or given up */
  bool have_transit;
  int64_t prev_transit_us;
  double jitter_us;
  parley__jitter_stats st;
};

static int64_t media_us(const parley__jitter *j, int64_t dts) {
  return dts * 1000000 / (int64_t)j->cfg.clock_hz;
}

parley__jitter *parley__jitter_new(const parley__jitter_config *cfg_in, int *err) {
  parley__jitter_config c = cfg_in ? *cfg_in : (parley__jitter_config){0};
  if (!c.clock_hz) c.clock_hz = 48000;
  if (!c.frame_samples) c.frame_samples = 960;
  if (!c.max_payload_bytes) c.max_payload_bytes = 1500;
  if (!c.capacity_packets) c.capacity_packets = 128;
  if (!c.window_packets) c.window_packets = 500;
  if (c.late_target_pct == 0.0) c.late_target_pct = 2.0;
  if (!c.max_delay_ms) c.max_delay_ms = 1000;
  if (!c.resync_ms) c.resync_ms = 3000;
  if (!c.talk_shrink_interval_ms) c.talk_shrink_interval_ms = 500;
  if (c.wait_late_pct == 0.0) c.wait_late_pct = 1.0;
  if (c.accel_target_pct == 0.0) c.accel_target_pct = c.wait_late_pct > 5.0 ? c.wait_late_pct : 5.0;
  if (!c.tick_samples) c.tick_samples = c.frame_samples / 2 ? c.frame_samples / 2 : 1;
  int e = 0;
  if (c.clock_hz > 384000 || c.frame_samples > c.clock_hz || c.max_payload_bytes > 65536 ||
      c.capacity_packets < 4 || c.capacity_packets > 4096 || c.window_packets > 4096 ||
      !(c.late_target_pct > 0.0 && c.late_target_pct < 50.0) || c.max_delay_ms > 10000 ||
      c.min_delay_ms > c.max_delay_ms || c.resync_ms > 600000 ||
      !(c.wait_late_pct > 0.0 && c.wait_late_pct < 50.0) ||
      !(c.accel_target_pct >= c.wait_late_pct && c.accel_target_pct < 50.0) || c.tick_samples > c.frame_samples) {
    e = PARLEY_EINVAL;
  }
  parley__jitter *j = NULL;
  if (!e) {
    j = calloc(1, sizeof *j);
    if (j) {
      j->slots = calloc(c.capacity_packets, sizeof *j->slots);
      j->pool = malloc(c.capacity_packets * c.max_payload_bytes);
      j->free_stack = malloc(c.capacity_packets * sizeof *j->free_stack);
      j->order = malloc(c.capacity_packets * sizeof *j->order);
      j->out_buf = malloc(c.max_payload_bytes);
      j->win_ring = malloc(c.window_packets * sizeof *j->win_ring);
      j->win_sorted = malloc(c.window_packets * sizeof *j->win_sorted);
    }
    if (!j || !j->slots || !j->pool || !j->free_stack || !j->order || !j->out_buf || !j->win_ring ||
        !j->win_sorted) {
      parley__jitter_free(j);
      j = NULL;
      e = PARLEY_ENOMEM;
    }
  }
  if (e) {
    if (err) *err = e;
    return NULL;
  }
  j->cfg = c;
  j->frame_us = media_us(j, c.frame_samples);
  j->resync_us = (int64_t)c.resync_ms * 1000;
  j->min_delay_us = (int64_t)c.min_delay_ms * 1000;
  j->max_delay_us = (int64_t)c.max_delay_ms * 1000;
  j->shrink_interval_us = (int64_t)c.talk_shrink_interval_ms * 1000;
  parley__jitter_reset(j);
  if (err) *err = 0;
  return j;
}

void parley__jitter_free(parley__jitter *j) {
  if (!j) return;
  free(j->slots);
  free(j->pool);
  free(j->free_stack);
  free(j->order);
  free(j->out_buf);
  free(j->win_ring);
  free(j->win_sorted);
  free(j);
}

static void flush_packets(parley__jitter *j) {
  j->n_buf = 0;
  j->n_free = j->cfg.capacity_packets;
  for (uint32_t i = 0; i < j->n_free; i++) j->free_stack[i] = j->n_free - 1 - i;
}

void parley__jitter_reset(parley__jitter *j) {
  if (!j) return;
  flush_packets(j);
  j->n_win = j->win_pos = 0;
  j->have_stream = false;
  j->started = false;
  j->have_last = false;
  j->played_mask = 0;
  j->in_dtx = false;
  j->gap_conceals = 0;
  j->shrink_ticks = 0;
  j->last_shrink_us = INT64_MIN / 2;
  j->have_transit = false;
  j->jitter_us = 0.0;
  j->cur_us = j->target_us = 0;
  j->expanded = false;
  j->expand_run = 0;
  j->pending_reset = true;
}

/* ---- relative-transit window ---- */

static uint32_t sorted_lower_bound(const parley__jitter *j, int64_t v) {
  uint32_t lo = 0, hi = j->n_win;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (j->win_sorted[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void window_add(parley__jitter *j, int64_t r) {
  uint32_t cap = j->cfg.window_packets;
  if (j->n_win == cap) { /* evict the oldest */
    int64_t old = j->win_ring[j->win_pos];
    uint32_t k = sorted_lower_bound(j, old);
    memmove(&j->win_sorted[k], &j->win_sorted[k + 1], (j->n_win - k - 1) * sizeof(int64_t));
    j->n_win--;
  }
  uint32_t k = sorted_lower_bound(j, r);
  memmove(&j->win_sorted[k + 1], &j->win_sorted[k], (j->n_win - k) * sizeof(int64_t));
  j->win_sorted[k] = r;
  j->n_win++;
  j->win_ring[j->win_pos] = r;
  j->win_pos = (j->win_pos + 1) % cap;
}

/* Smallest offset that keeps the late share of the window at most pct. */
static int64_t quantile_offset(const parley__jitter *j, double pct) {
  if (j->n_win == 0) return 0;
  uint32_t allowed = (uint32_t)((double)j->n_win * pct / 100.0);
  int64_t t = j->win_sorted[j->n_win - 1 - allowed];
  int64_t lo = j->win_sorted[0];
  if (t - lo > j->max_delay_us) t = lo + j->max_delay_us;
  if (t - lo < j->min_delay_us) t = lo + j->min_delay_us;
  return t;
}

static int64_t target_offset(const parley__jitter *j) { return quantile_offset(j, j->cfg.late_target_pct); }

/* ---- packet index ---- */

static slot *head(parley__jitter *j) { return j->n_buf ? &j->slots[j->order[0]] : NULL; }

static void pop_head(parley__jitter *j) {
  j->free_stack[j->n_free++] = j->order[0];
  memmove(&j->order[0], &j->order[1], (j->n_buf - 1) * sizeof *j->order);
  j->n_buf--;
}

static void mark_played(parley__jitter *j, int64_t seq) {
  if (j->played_mask == 0 || seq > j->played_hi + 63) {
    j->played_hi = seq;
    j->played_mask = 1;
  } else if (seq > j->played_hi) {
    j->played_mask = (j->played_mask << (seq - j->played_hi)) | 1;
    j->played_hi = seq;
  } else if (j->played_hi - seq < 64) {
    j->played_mask |= (uint64_t)1 << (j->played_hi - seq);
  }
}

static bool was_played(const parley__jitter *j, int64_t seq) {
  if (j->played_mask == 0 || seq > j->played_hi || j->played_hi - seq >= 64) return false;
  return (j->played_mask >> (j->played_hi - seq)) & 1;
}

static void start_stream(parley__jitter *j, uint32_t ssrc, uint16_t seq, uint32_t ts, int64_t now_us) {
  flush_packets(j);
  j->n_win = j->win_pos = 0;
  j->have_stream = true;
  j->ssrc = ssrc;
  j->max_seq = seq;
  j->max_ts = ts;
  j->ref_ts = ts;
  j->ref_us = now_us;
  j->started = false;
  j->have_last = false;
  j->played_mask = 0;
  j->in_dtx = false;
  j->gap_conceals = 0;
  j->gap_expands = j->gap_expand_samples = 0;
  j->have_transit = false;
  j->late_run = 0;
  j->expanded = false;
  j->expand_run = 0;
  j->pending_reset = true;
}

int parley__jitter_put(parley__jitter *j, uint16_t seq, uint32_t timestamp, uint32_t ssrc, bool marker,
                       const uint8_t *payload, size_t payload_bytes, int64_t now_us) {
  if (!j || !payload || payload_bytes == 0 || payload_bytes > j->cfg.max_payload_bytes) return PARLEY_EINVAL;
  if (j->have_stream && ssrc != j->ssrc) {
    j->st.ssrc_changes++;
    j->have_stream = false;
  }
  if (!j->have_stream) start_stream(j, ssrc, seq, timestamp, now_us);

  int64_t eseq = j->max_seq + (int16_t)(uint16_t)(seq - (uint16_t)j->max_seq);
  int64_t ets = j->max_ts + (int32_t)(uint32_t)(timestamp - (uint32_t)j->max_ts);
  int64_t r = now_us - j->ref_us - media_us(j, ets - j->ref_ts);

  /* A transit far outside everything recent is a timestamp jump, not network delay: resync. */
  if (j->n_win > 0 && (r < j->win_sorted[0] - j->resync_us || r > j->win_sorted[j->n_win - 1] + j->resync_us)) {
    j->st.resyncs++;
    start_stream(j, ssrc, seq, timestamp, now_us);
    eseq = seq;
    ets = timestamp;
    r = 0;
  }

  /* Duplicates: already played, or already buffered. */
  if (was_played(j, eseq)) {
    j->st.duplicates++;
    return PARLEY__JITTER_DROP_DUPLICATE;
  }
  for (uint32_t i = 0; i < j->n_buf; i++) {
    const slot *s = &j->slots[j->order[i]];
    if (s->seq == eseq || s->ts == ets) {
      j->st.duplicates++;
      return PARLEY__JITTER_DROP_DUPLICATE;
    }
  }

  if (eseq > j->max_seq) j->max_seq = eseq;
  if (ets > j->max_ts) j->max_ts = ets;

  /* RFC 3550 section 6.4.1: J += (|D| - J) / 16 over consecutive arrivals. */
  if (j->have_transit) {
    int64_t d = r - j->prev_transit_us;
    if (d < 0) d = -d;
    j->jitter_us += ((double)d - j->jitter_us) / 16.0;
  }
  j->prev_transit_us = r;
  j->have_transit = true;
  window_add(j, r);

  if (j->started && (ets < j->play_ts || (j->have_last && eseq <= j->last_seq))) {
    if (j->late_run++ == 0) j->late_run_start_us = now_us;
    if (j->late_run < LATE_RUN_PACKETS || now_us - j->late_run_start_us < LATE_RUN_US) {
      j->st.late++;
      return PARLEY__JITTER_DROP_LATE;
    }
    j->st.resyncs++;
    start_stream(j, ssrc, seq, timestamp, now_us);
    eseq = seq;
    ets = timestamp;
    window_add(j, 0);
  }
  j->late_run = 0;
  int64_t horizon = (int64_t)j->cfg.capacity_packets * j->cfg.frame_samples;
  if (j->n_free == 0 || (j->started && ets - j->play_ts >= horizon)) {
    j->st.overflow++;
    return PARLEY__JITTER_DROP_OVERFLOW;
  }

  /* A consecutive packet after a timestamp gap means the gap was DTX: the conceal frames we gave while
   * waiting were silence after all, and so was the expansion that waited for a frame the sender never
   * sent (counted as the silent frames it stood in for, a started frame as a whole one). */
  if (j->have_last && eseq == j->last_seq + 1 && ets > j->last_ts + j->cfg.frame_samples) {
    j->st.concealed -= j->gap_conceals;
    j->st.silence += j->gap_conceals;
    j->gap_conceals = 0;
    j->st.expands -= j->gap_expands;
    j->st.expand_samples -= j->gap_expand_samples;
    j->st.silence += (j->gap_expand_samples + j->cfg.frame_samples - 1) / j->cfg.frame_samples;
    j->gap_expands = j->gap_expand_samples = 0;
    j->in_dtx = true;
  }

  uint32_t idx = j->free_stack[--j->n_free];
  slot *s = &j->slots[idx];
  s->seq = eseq;
  s->ts = ets;
  s->arrival_us = now_us;
  s->len = (uint32_t)payload_bytes;
  s->marker = marker;
  s->fec = j->cfg.has_fec ? j->cfg.has_fec(payload, payload_bytes) : false;
  memcpy(j->pool + (size_t)idx * j->cfg.max_payload_bytes, payload, payload_bytes);
  uint32_t k = j->n_buf;
  while (k > 0 && j->slots[j->order[k - 1]].ts > ets) k--;
  memmove(&j->order[k + 1], &j->order[k], (j->n_buf - k) * sizeof *j->order);
  j->order[k] = idx;
  j->n_buf++;
  j->st.packets_in++;
  return 0;
}

static void emit_packet(parley__jitter *j, const slot *s, parley__jitter_frame *out, parley__jitter_kind kind) {
  uint32_t idx = (uint32_t)(s - j->slots);
  memcpy(j->out_buf, j->pool + (size_t)idx * j->cfg.max_payload_bytes, s->len);
  out->kind = kind;
  out->payload = j->out_buf;
  out->payload_bytes = s->len;
  out->seq = (uint16_t)s->seq;
  out->marker = s->marker;
}

int parley__jitter_get(parley__jitter *j, int64_t now_us, parley__jitter_frame *out) {
  if (!j || !out) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  out->kind = PARLEY__JITTER_NOTHING;
  out->reset = j->pending_reset;
  j->pending_reset = false;
  if (!j->have_stream) return 0;
  out->ssrc = j->ssrc;
  const int64_t F = j->cfg.frame_samples;
  const int64_t T = target_offset(j);
  const int64_t fastest = j->n_win ? j->win_sorted[0] : 0;
  j->target_us = T - fastest;

  if (!j->started) {
    slot *h = head(j);
    if (!h) return 0;
    int64_t cur = now_us - j->ref_us - media_us(j, h->ts - j->ref_ts);
    if (cur < T) return 0;
    j->started = true;
    j->play_ts = h->ts;
  }

  /* Stale packets (only possible after odd timestamps) are late. */
  while (head(j) && head(j)->ts < j->play_ts) {
    pop_head(j);
    j->st.late++;
  }
  int64_t cur = now_us - j->ref_us - media_us(j, j->play_ts - j->ref_ts);

  /* Shrink during talk: drop the packet due now when the next one is here too, once the excess has
   * lasted SHRINK_HOLD_TICKS and not more often than the configured interval. */
  if (cur - j->frame_us >= T) {
    if (j->shrink_ticks < SHRINK_HOLD_TICKS) j->shrink_ticks++;
  } else {
    j->shrink_ticks = 0;
  }
  if (j->shrink_ticks >= SHRINK_HOLD_TICKS && now_us - j->last_shrink_us >= j->shrink_interval_us &&
      j->n_buf >= 2 && head(j)->ts == j->play_ts && j->slots[j->order[1]].ts == j->play_ts + F) {
    slot *h = head(j);
    j->have_last = true;
    j->last_seq = h->seq;
    j->last_ts = h->ts;
    pop_head(j);
    j->st.shrink_drops++;
    j->play_ts += F;
    cur -= j->frame_us;
    j->last_shrink_us = now_us;
    j->shrink_ticks = 0;
  }

  for (int pass = 0; pass < 2; pass++) {
    slot *h = head(j);
    bool consecutive = h && (!j->have_last || h->seq == j->last_seq + 1);
    out->timestamp = (uint32_t)j->play_ts;
    j->cur_us = cur - fastest;
    if (h && h->ts == j->play_ts) {
      emit_packet(j, h, out, PARLEY__JITTER_PACKET);
      /* A packet that ends a timestamp gap with a consecutive sequence number, and does not start a
       * talkspurt (marker), is a DTX update: the sender is still quiet after it. */
      j->in_dtx = j->have_last && h->seq == j->last_seq + 1 && h->ts > j->last_ts + F && !h->marker;
      j->have_last = true;
      j->last_seq = h->seq;
      j->last_ts = h->ts;
      mark_played(j, h->seq);
      pop_head(j);
      j->play_ts += F;
      j->gap_conceals = 0;
      j->st.packets_out++;
      return 0;
    }
    bool silence = (h && consecutive) || (!h && j->in_dtx);
    if (silence) {
      out->kind = PARLEY__JITTER_SILENCE;
      j->in_dtx = true;
      j->st.silence++;
      if (cur < T) return 0; /* grow in silence */
      bool room = !h || j->play_ts + 2 * F <= h->ts;
      j->play_ts += (cur - j->frame_us >= T && room) ? 2 * F : F;
      return 0;
    }
    if (h && h->ts == j->play_ts + F) {
      emit_packet(j, h, out, PARLEY__JITTER_FEC);
      out->marker = false;
      j->have_last = true;
      j->last_seq = h->seq - 1;
      j->last_ts = j->play_ts;
      j->play_ts += F;
      j->st.fec_recoveries++;
      return 0;
    }
    /* Missing frame. Above target and the next frame is here: skip instead of concealing. */
    if (pass == 0 && h && cur - j->frame_us >= T) {
      j->play_ts += F;
      cur -= j->frame_us;
      continue;
    }
    out->kind = PARLEY__JITTER_CONCEAL;
    j->st.concealed++;
    if (!h) j->gap_conceals++;
    if (cur >= T) j->play_ts += F; /* else hold: the packet may still come, the delay grows */
    return 0;
  }
  return 0;
}

/* ---- timescaled playout ---- */

static int64_t samples_of(const parley__jitter *j, int64_t us) {
  return us * (int64_t)j->cfg.clock_hz / 1000000;
}

/* Samples the play position may move earlier while the frame decided now stays on time at the low
 * target: what is queued (the decision tick does not move), plus one tick per whole tick the decision
 * offset d exceeds the target by (the next decision may come that much earlier). */
static int64_t shrink_room(const parley__jitter *j, int64_t d, int64_t T_low, uint32_t queued) {
  if (d < T_low) return 0;
  int64_t tick_us = media_us(j, j->cfg.tick_samples);
  return (int64_t)queued + (tick_us > 0 ? (d - T_low) / tick_us : 0) * (int64_t)j->cfg.tick_samples;
}

int parley__jitter_get_timescaled(parley__jitter *j, int64_t now_us, uint32_t queued_samples,
                                  parley__jitter_frame *out) {
  if (!j || !out) return PARLEY_EINVAL;
  memset(out, 0, sizeof *out);
  out->kind = PARLEY__JITTER_NOTHING;
  out->reset = j->pending_reset;
  j->pending_reset = false;
  const int64_t F = j->cfg.frame_samples, tick = j->cfg.tick_samples;
  const int64_t max_scale = F / 2, min_scale = F / 8 ? F / 8 : 1, max_silence_cut = 3 * F / 4;
  /* Far above the low target (after a delay spike's burst) a frame may lose up to 3/4 of itself. */
  const int64_t fast_scale = 3 * F / 4, fast_excess_us = FAST_ACCEL_FRAMES * j->frame_us;
  /* What completes the tick being filled: the unit of waiting (NOTHING, EXPAND, held silence). */
  const uint32_t fill = queued_samples < tick ? (uint32_t)(tick - queued_samples) : 1;
  out->out_samples = fill;
  if (!j->have_stream) return 0;
  out->ssrc = j->ssrc;
  const int64_t T_wait = quantile_offset(j, j->cfg.wait_late_pct);
  int64_t T_low = quantile_offset(j, j->cfg.accel_target_pct);
  if (T_low > T_wait) T_low = T_wait;
  const int64_t fastest = j->n_win ? j->win_sorted[0] : 0;
  const int64_t queued_us = media_us(j, queued_samples);
  j->target_us = T_low - fastest;

  if (!j->started) {
    slot *h = head(j);
    if (!h) return 0;
    if (now_us - j->ref_us - media_us(j, h->ts - j->ref_ts) < T_low) return 0;
    j->started = true;
    j->play_ts = h->ts;
    j->expanded = false;
  }
  while (head(j) && head(j)->ts < j->play_ts) {
    pop_head(j);
    j->st.late++;
  }
  /* Decision offset: the frame at play_ts is here iff its transit is at most d. */
  int64_t d = now_us - j->ref_us - media_us(j, j->play_ts - j->ref_ts);
  const int64_t prev_cur_us = j->cur_us; /* a wait (EXPAND) leaves the reported delay alone */

  for (int pass = 0; pass < 2; pass++) {
    slot *h = head(j);
    bool consecutive = h && (!j->have_last || h->seq == j->last_seq + 1);
    out->timestamp = (uint32_t)j->play_ts;
    j->cur_us = d + queued_us - fastest;
    if (h && h->ts == j->play_ts) {
      emit_packet(j, h, out, PARLEY__JITTER_PACKET);
      out->out_samples = (uint32_t)F;
      j->in_dtx = j->have_last && h->seq == j->last_seq + 1 && h->ts > j->last_ts + F && !h->marker;
      bool next_here = j->n_buf >= 2 && j->slots[j->order[1]].ts == j->play_ts + F;
      if (!j->in_dtx) {
        int64_t room = shrink_room(j, d, T_low, queued_samples);
        int64_t cap = d - T_low >= fast_excess_us ? fast_scale : max_scale;
        if (room > cap) room = cap;
        int64_t lack = d < T_low ? samples_of(j, T_low - d) : 0;
        if (lack > max_scale) lack = max_scale;
        if (room >= min_scale) {
          out->timescale_samples = -(int32_t)room;
          j->st.accelerated++;
        } else if (lack >= min_scale && !next_here) {
          out->timescale_samples = (int32_t)lack;
          j->st.stretched++;
        }
      }
      if (j->expanded) j->st.played_after_expand++;
      j->expanded = false;
      j->expand_run = 0;
      j->have_last = true;
      j->last_seq = h->seq;
      j->last_ts = h->ts;
      mark_played(j, h->seq);
      pop_head(j);
      j->play_ts += F;
      j->gap_conceals = 0;
      j->gap_expands = j->gap_expand_samples = 0;
      j->st.packets_out++;
      return 0;
    }
    if ((h && consecutive) || (!h && j->in_dtx)) {
      /* DTX: silence is stretched or cut directly. A packet that shows the gap was DTX ends any
       * waiting (what was expanded was the start of the pause), and the silent frames before it go
       * down to the low target at once: nothing is lost by skipping silence. */
      if (h) {
        j->expanded = false;
        j->expand_run = 0;
        while (j->play_ts + F <= h->ts && d - j->frame_us >= T_low) {
          j->play_ts += F;
          d -= j->frame_us;
        }
        if (h->ts == j->play_ts) {
          pass = -1;
          continue;
        }
      }
      out->kind = PARLEY__JITTER_SILENCE;
      j->in_dtx = true;
      j->st.silence++;
      if (d < T_low) return 0; /* hold (fill): grow */
      int64_t room = shrink_room(j, d, T_low, queued_samples);
      if (room > max_silence_cut) room = max_silence_cut;
      out->out_samples = (uint32_t)(F - room);
      j->play_ts += F;
      return 0;
    }
    /* Wait while the frame may still come: below the wait limit, or while nothing later is here
     * either (all late: a delay spike, not a loss), within the delay ceiling. */
    bool all_late = !h && d - fastest < j->max_delay_us;
    /* Except at or above the low target when the next packet carries this frame's FEC: recovering it
     * now costs one frame of near-original audio and no delay, where waiting costs an expansion, and
     * the delay it adds must then be shed by accelerating talk. */
    bool fec_next = h && h->ts == j->play_ts + F && h->fec && d >= T_low;
    if ((d < T_wait && !fec_next) || all_late) {
      out->kind = PARLEY__JITTER_EXPAND;
      j->cur_us = prev_cur_us;
      j->expanded = true;
      j->expand_run += fill;
      j->st.expands++;
      j->st.expand_samples += fill;
      if (!h) { /* maybe a DTX pause: put() recounts it as silence if the next packet says so */
        j->gap_expands++;
        j->gap_expand_samples += fill;
      }
      return 0;
    }
    /* Given up on this frame: the expansion so far stands in for (part of) it. */
    j->expanded = false;
    if (j->expand_run >= F) {
      j->expand_run -= F;
      j->play_ts += F;
      d -= j->frame_us;
      pass = -1; /* the next frame is a fresh decision */
      continue;
    }
    if (h && h->ts == j->play_ts + F) {
      emit_packet(j, h, out, PARLEY__JITTER_FEC);
      out->marker = false;
      out->out_samples = (uint32_t)F;
      j->have_last = true;
      j->last_seq = h->seq - 1;
      j->last_ts = j->play_ts;
      j->play_ts += F;
      j->expand_run = 0;
      j->st.fec_recoveries++;
      return 0;
    }
    if (pass == 0 && h && d - j->frame_us >= T_low) { /* far enough above target: skip it outright */
      j->play_ts += F;
      d -= j->frame_us;
      continue;
    }
    out->kind = PARLEY__JITTER_CONCEAL;
    out->out_samples = (uint32_t)(F - j->expand_run);
    j->expand_run = 0;
    j->st.concealed++;
    if (!h) j->gap_conceals++;
    j->play_ts += F;
    return 0;
  }
  return 0;
}

void parley__jitter_get_stats(const parley__jitter *j, parley__jitter_stats *out) {
  if (!j || !out) return;
  *out = j->st;
  out->current_delay_ms = (double)j->cur_us / 1000.0;
  out->target_delay_ms = (double)j->target_us / 1000.0;
  out->jitter_ms = j->jitter_us / 1000.0;
}
