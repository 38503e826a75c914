/* jitter.c: the adaptive jitter buffer (see jitter.h for the model). Owns a packet pool, a ts-sorted
 * index of the buffered packets, the relative-transit window and one output scratch buffer, all
 * allocated at create. put() and get() run on one thread (the audio thread) and never allocate, lock
 * or block; their work is bounded by the pool capacity and the window size.
 *
 * Timeline: r = arrival_us - ref_us - media_us(ts - ref_ts) is a packet's relative transit (ref is the
 * stream's first packet). Sequence numbers and timestamps are unwrapped to 64 bits against the highest
 * seen so far; positions and durations are in samples at clock_hz.
 */
#include "engine/jitter.h"
#include "base/thread_check.h"

#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

/* Every packet late for this long (and at least LATE_RUN_PACKETS of them): the timeline is wrong
 * (e.g. the sender paused its timestamps), not the network: resync. A delay spike's burst arrives at
 * once and never lasts this long. */
#define LATE_RUN_US 1000000
#define LATE_RUN_PACKETS 10
/* A packet arriving this much earlier than the fastest packet in the window: its timestamp jumped
 * forward (the network cannot deliver that much faster than it ever did; a route change that does only
 * costs a resync). */
#define EARLY_JUMP_US 250000
/* Far above the low target (this many nominal frames), accelerate may cut 3/4 of a packet. */
#define FAST_ACCEL_FRAMES 3
/* Bound on the decisions one get() takes before it hands out an action (skips, covered gaps). */
#define MAX_PASSES 8

typedef struct slot {
  int64_t seq, ts, arrival_us;
  uint32_t len, dur;
  bool marker;
  bool fec; /* carries in-band FEC for the audio before it */
} slot;

struct parley__jitter {
  parley__jitter_config cfg;
  int64_t tol;     /* a gap up to this is no gap: less than the shortest Opus frame (2.5 ms) */
  int64_t horizon; /* packets starting this far past play_ts overflow */
  int64_t frame_us, resync_us, early_us, min_delay_us, max_delay_us;
  /* Pool: slots + payload bytes, a free stack, and the buffered slots ordered by ts. */
  slot *slots;
  uint8_t *pool;
  uint32_t *free_stack;
  uint32_t n_free;
  uint32_t *order;
  uint32_t n_buf;
  uint8_t *out_buf;
  /* Relative-transit window: ring in arrival order plus a sorted copy for quantiles; the transits of
   * the packets in it that arrived after a later packet (reordered), sorted, for the wait limit. */
  int64_t *win_ring, *win_sorted, *reord_sorted;
  bool *win_reord;
  uint32_t n_win, win_pos, n_reord;
  /* Stream. */
  bool have_stream;
  uint32_t ssrc;
  int64_t max_seq, max_ts, ref_ts, ref_us;
  bool started;
  int64_t play_ts; /* the next sample position to play */
  bool have_last;
  int64_t last_seq, last_ts, last_dur; /* last audio consumed (played or FEC-recovered) */
  int64_t played_hi;
  uint64_t played_mask; /* bit i: seq played_hi - i was played */
  bool in_dtx;
  uint64_t gap_conceals, gap_conceal_samples; /* CONCEAL with nothing later buffered */
  uint64_t gap_expands, gap_expand_samples;   /* EXPAND with nothing later buffered */
  bool pending_reset;
  uint32_t late_run;
  int64_t late_run_start_us;
  int64_t cur_us, target_us; /* for stats, relative to the window's fastest packet */
  bool expanded;             /* the audio at play_ts was waited for with EXPAND */
  int64_t expand_run;        /* samples expanded since the last packet played or gap given up */
  parley__owner owner; /* debug builds: the audio thread */
  bool have_transit;
  int64_t prev_transit_us;
  double jitter_us;
  parley__jitter_stats st;
};

static int64_t media_us(const parley__jitter *j, int64_t dts) {
  return dts * 1000000 / (int64_t)j->cfg.clock_hz;
}

static int64_t samples_of(const parley__jitter *j, int64_t us) {
  return us * (int64_t)j->cfg.clock_hz / 1000000;
}

parley__jitter *parley__jitter_new(const parley__jitter_config *cfg_in, int *err) {
  parley__jitter_config c = cfg_in ? *cfg_in : (parley__jitter_config){0};
  if (!c.clock_hz) c.clock_hz = 48000;
  if (!c.frame_samples) c.frame_samples = c.clock_hz / 50;
  if (!c.max_packet_samples) c.max_packet_samples = c.clock_hz / 1000 * 120;
  if (!c.max_payload_bytes) c.max_payload_bytes = 1500;
  if (!c.capacity_packets) c.capacity_packets = 128;
  if (!c.window_packets) c.window_packets = 500;
  if (!c.max_delay_ms) c.max_delay_ms = 1000;
  if (!c.resync_ms) c.resync_ms = 3000;
  if (c.wait_late_pct == 0.0) c.wait_late_pct = 1.0;
  if (c.accel_target_pct == 0.0) c.accel_target_pct = c.wait_late_pct > 5.0 ? c.wait_late_pct : 5.0;
  if (!c.tick_samples) c.tick_samples = c.frame_samples / 2 ? c.frame_samples / 2 : 1;
  int e = 0;
  if (c.clock_hz > 384000 || c.clock_hz < 1000 || c.frame_samples > c.clock_hz ||
      c.max_packet_samples > c.clock_hz || c.max_payload_bytes > 65536 || c.capacity_packets < 4 ||
      c.capacity_packets > 4096 || c.window_packets > 4096 || c.max_delay_ms > 10000 ||
      c.min_delay_ms > c.max_delay_ms || c.resync_ms > 600000 ||
      !(c.wait_late_pct > 0.0 && c.wait_late_pct < 50.0) ||
      !(c.accel_target_pct >= c.wait_late_pct && c.accel_target_pct < 50.0) || c.tick_samples > c.clock_hz) {
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
      j->reord_sorted = malloc(c.window_packets * sizeof *j->reord_sorted);
      j->win_reord = malloc(c.window_packets * sizeof *j->win_reord);
    }
    if (!j || !j->slots || !j->pool || !j->free_stack || !j->order || !j->out_buf || !j->win_ring ||
        !j->win_sorted || !j->reord_sorted || !j->win_reord) {
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
  j->tol = c.clock_hz / 400 ? c.clock_hz / 400 - 1 : 0;
  j->frame_us = media_us(j, c.frame_samples);
  j->resync_us = (int64_t)c.resync_ms * 1000;
  j->early_us = j->resync_us < EARLY_JUMP_US ? j->resync_us : EARLY_JUMP_US;
  j->min_delay_us = (int64_t)c.min_delay_ms * 1000;
  j->max_delay_us = (int64_t)c.max_delay_ms * 1000;
  /* Room for the delay ceiling twice over and a full pool of nominal packets, whichever is more. */
  j->horizon = (int64_t)c.capacity_packets * c.frame_samples;
  if (j->horizon < 2 * samples_of(j, j->max_delay_us)) j->horizon = 2 * samples_of(j, j->max_delay_us);
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
  free(j->reord_sorted);
  free(j->win_reord);
  free(j);
}

static void flush_packets(parley__jitter *j) {
  j->n_buf = 0;
  j->n_free = j->cfg.capacity_packets;
  for (uint32_t i = 0; i < j->n_free; i++) j->free_stack[i] = j->n_free - 1 - i;
}

/* Forgets the stream's timeline and packets (not the counters). */
static void forget_stream(parley__jitter *j) {
  flush_packets(j);
  j->n_win = j->win_pos = j->n_reord = 0;
  j->started = false;
  j->have_last = false;
  j->played_mask = 0;
  j->in_dtx = false;
  j->gap_conceals = j->gap_conceal_samples = 0;
  j->gap_expands = j->gap_expand_samples = 0;
  j->have_transit = false;
  j->late_run = 0;
  j->expanded = false;
  j->expand_run = 0;
  j->pending_reset = true;
}

void parley__jitter_reset(parley__jitter *j) {
  if (!j) return;
  forget_stream(j);
  j->have_stream = false;
  j->jitter_us = 0.0;
  j->cur_us = j->target_us = 0;
}

/* ---- relative-transit window ---- */

static uint32_t lower_bound(const int64_t *a, uint32_t n, int64_t v) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void sorted_remove(int64_t *a, uint32_t *n, int64_t v) {
  uint32_t k = lower_bound(a, *n, v);
  memmove(&a[k], &a[k + 1], (*n - k - 1) * sizeof(int64_t));
  (*n)--;
}

static void sorted_insert(int64_t *a, uint32_t *n, int64_t v) {
  uint32_t k = lower_bound(a, *n, v);
  memmove(&a[k + 1], &a[k], (*n - k) * sizeof(int64_t));
  a[k] = v;
  (*n)++;
}

static void window_add(parley__jitter *j, int64_t r, bool reordered) {
  uint32_t cap = j->cfg.window_packets;
  if (j->n_win == cap) { /* evict the oldest */
    sorted_remove(j->win_sorted, &j->n_win, j->win_ring[j->win_pos]);
    if (j->win_reord[j->win_pos]) sorted_remove(j->reord_sorted, &j->n_reord, j->win_ring[j->win_pos]);
  }
  sorted_insert(j->win_sorted, &j->n_win, r);
  if (reordered) sorted_insert(j->reord_sorted, &j->n_reord, r);
  j->win_ring[j->win_pos] = r;
  j->win_reord[j->win_pos] = reordered;
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

/* The wait limit under the window's wait quantile t: missing audio is waited for past the low target
 * only while a later packet is here (with nothing later here, everything is late and waiting is
 * all_late's), so only the packets that arrived after a later one say what waiting saves: the
 * smallest offset that leaves at most pct of the window's packets among them late. A delay spike's
 * packets arrive in order and do not count: after one, a loss is not waited for the spike's height. */
static int64_t reorder_wait_offset(const parley__jitter *j, double pct, int64_t t, int64_t T_low) {
  uint32_t allowed = (uint32_t)((double)j->n_win * pct / 100.0);
  int64_t reord = j->n_reord > allowed ? j->reord_sorted[j->n_reord - 1 - allowed] : T_low;
  if (reord < t) t = reord;
  return t > T_low ? t : T_low;
}

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
  forget_stream(j);
  j->have_stream = true;
  j->ssrc = ssrc;
  j->max_seq = seq;
  j->max_ts = ts;
  j->ref_ts = ts;
  j->ref_us = now_us;
}

int parley__jitter_put(parley__jitter *j, uint16_t seq, uint32_t timestamp, uint32_t ssrc, bool marker,
                       const uint8_t *payload, size_t payload_bytes, int64_t now_us) {
  if (!j || !payload || payload_bytes == 0 || payload_bytes > j->cfg.max_payload_bytes) return PARLEY_EINVAL;
  PARLEY__OWNER_CHECK(&j->owner, "parley__jitter_put (the audio thread's)");
  int dur = j->cfg.packet_samples ? j->cfg.packet_samples(payload, payload_bytes) : (int)j->cfg.frame_samples;
  if (dur <= 0 || (uint32_t)dur > j->cfg.max_packet_samples) {
    j->st.malformed++;
    return PARLEY__JITTER_DROP_MALFORMED;
  }
  if (j->have_stream && ssrc != j->ssrc) {
    j->st.ssrc_changes++;
    j->have_stream = false;
  }
  if (!j->have_stream) start_stream(j, ssrc, seq, timestamp, now_us);

  int64_t eseq = j->max_seq + (int16_t)(uint16_t)(seq - (uint16_t)j->max_seq);
  int64_t ets = j->max_ts + (int32_t)(uint32_t)(timestamp - (uint32_t)j->max_ts);
  int64_t r = now_us - j->ref_us - media_us(j, ets - j->ref_ts);

  /* Timestamp jumps: newer in sequence but older in time than the newest packet, or a transit far
   * outside everything recent. Not network delay: restart the timeline here. */
  bool back_in_time = eseq > j->max_seq && ets + j->tol < j->max_ts;
  if (back_in_time ||
      (j->n_win > 0 && (r < j->win_sorted[0] - j->early_us || r > j->win_sorted[j->n_win - 1] + j->resync_us))) {
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

  bool reordered = eseq < j->max_seq; /* a later packet came first */
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
  window_add(j, r, reordered);

  /* Late only when all of it lies before the play position. */
  if (j->started && ets + dur <= j->play_ts) {
    if (j->late_run++ == 0) j->late_run_start_us = now_us;
    if (j->late_run < LATE_RUN_PACKETS || now_us - j->late_run_start_us < LATE_RUN_US) {
      j->st.late++;
      return PARLEY__JITTER_DROP_LATE;
    }
    j->st.resyncs++;
    start_stream(j, ssrc, seq, timestamp, now_us);
    eseq = seq;
    ets = timestamp;
    window_add(j, 0, false);
  }
  j->late_run = 0;
  if (j->n_free == 0 || (j->started && ets - j->play_ts >= j->horizon)) {
    j->st.overflow++;
    return PARLEY__JITTER_DROP_OVERFLOW;
  }

  /* A consecutive packet after a timestamp gap means the gap was DTX: the concealment we gave while
   * waiting was silence after all, and so was the expansion that waited for audio the sender never
   * sent (counted as the silent nominal frames it stood in for, a started one as a whole one). */
  if (j->have_last && eseq == j->last_seq + 1 && ets > j->last_ts + j->last_dur + j->tol) {
    const uint64_t F = j->cfg.frame_samples;
    j->st.concealed -= j->gap_conceals;
    j->st.concealed_samples -= j->gap_conceal_samples;
    j->st.silence += j->gap_conceals;
    j->st.expands -= j->gap_expands;
    j->st.expand_samples -= j->gap_expand_samples;
    j->st.silence += (j->gap_expand_samples + F - 1) / F;
    j->gap_conceals = j->gap_conceal_samples = 0;
    j->gap_expands = j->gap_expand_samples = 0;
    j->in_dtx = true;
  }

  uint32_t idx = j->free_stack[--j->n_free];
  slot *s = &j->slots[idx];
  s->seq = eseq;
  s->ts = ets;
  s->dur = (uint32_t)dur;
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

/* Samples the play position may move earlier while the audio decided now stays on time at the low
 * target: what is queued (the decision tick does not move), plus one tick per whole tick the decision
 * offset d exceeds the target by (the next decision may come that much earlier). */
static int64_t shrink_room(const parley__jitter *j, int64_t d, int64_t T_low, uint32_t queued) {
  if (d < T_low) return 0;
  int64_t tick_us = media_us(j, j->cfg.tick_samples);
  return (int64_t)queued + (tick_us > 0 ? (d - T_low) / tick_us : 0) * (int64_t)j->cfg.tick_samples;
}

static void consumed(parley__jitter *j, int64_t seq, int64_t ts, int64_t dur) {
  j->have_last = true;
  j->last_seq = seq;
  j->last_ts = ts;
  j->last_dur = dur;
}

/* Plays the head packet h, which starts at (or within tol of, or overlaps) play_ts. d is the decision
 * offset of play_ts. */
static void play_packet(parley__jitter *j, slot *h, int64_t d, int64_t T_low, uint32_t queued,
                        parley__jitter_frame *out) {
  const int64_t P = h->dur;
  const int64_t max_scale = P / 2, min_scale = j->cfg.frame_samples / 8 ? j->cfg.frame_samples / 8 : 1;
  const int64_t fast_scale = 3 * P / 4, fast_excess_us = FAST_ACCEL_FRAMES * j->frame_us;
  emit_packet(j, h, out, PARLEY__JITTER_PACKET);
  out->timestamp = (uint32_t)h->ts;
  out->out_samples = (uint32_t)P;
  /* A packet that ends a timestamp gap with a consecutive sequence number, and does not start a
   * talkspurt (marker), is a DTX update: the sender is still quiet after it. */
  j->in_dtx = j->have_last && h->seq == j->last_seq + 1 && h->ts > j->last_ts + j->last_dur + j->tol && !h->marker;
  bool next_here = j->n_buf >= 2 && j->slots[j->order[1]].ts <= h->ts + P + j->tol;
  if (!j->in_dtx) {
    int64_t room = shrink_room(j, d, T_low, queued);
    int64_t cap = d - T_low >= fast_excess_us ? fast_scale : max_scale;
    if (room > cap) room = cap;
    /* Packets shorter than the device tick: unless the next packet is here already, keep what this one
     * leaves queued at a tick, or the same tick would have to wait for audio that has not come. */
    int64_t spare = (int64_t)queued + P - (int64_t)j->cfg.tick_samples;
    if (!next_here && room > spare) room = spare;
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
  consumed(j, h->seq, h->ts, P);
  mark_played(j, h->seq);
  if (h->ts + P > j->play_ts) j->play_ts = h->ts + P;
  pop_head(j);
  j->gap_conceals = j->gap_conceal_samples = 0;
  j->gap_expands = j->gap_expand_samples = 0;
  j->st.packets_out++;
}

int parley__jitter_get(parley__jitter *j, int64_t now_us, uint32_t queued_samples, parley__jitter_frame *out) {
  if (!j || !out) return PARLEY_EINVAL;
  PARLEY__OWNER_CHECK(&j->owner, "parley__jitter_get (the audio thread's)");
  memset(out, 0, sizeof *out);
  out->kind = PARLEY__JITTER_NOTHING;
  out->reset = j->pending_reset;
  j->pending_reset = false;
  const int64_t tick = j->cfg.tick_samples;
  /* What completes the tick being filled: the unit of waiting (NOTHING, EXPAND, held silence). */
  const uint32_t fill = queued_samples < tick ? (uint32_t)(tick - queued_samples) : 1;
  out->out_samples = fill;
  if (!j->have_stream) return 0;
  out->ssrc = j->ssrc;
  int64_t T_wait = quantile_offset(j, j->cfg.wait_late_pct);
  int64_t T_low = quantile_offset(j, j->cfg.accel_target_pct);
  if (T_low > T_wait) T_low = T_wait;
  T_wait = reorder_wait_offset(j, j->cfg.wait_late_pct, T_wait, T_low);
  const int64_t fastest = j->n_win ? j->win_sorted[0] : 0;
  const int64_t queued_us = media_us(j, queued_samples);
  j->target_us = T_low - fastest;

  if (!j->started) {
    slot *h = head(j);
    if (!h) return 0;
    /* Start when the first packet is due at the low target; a packet shorter than the device tick
     * also waits for the audio after it that the same tick needs. */
    int64_t short_by = tick > (int64_t)h->dur ? tick - (int64_t)h->dur : 0;
    if (now_us - j->ref_us - media_us(j, h->ts - j->ref_ts) < T_low + media_us(j, short_by)) return 0;
    j->started = true;
    j->play_ts = h->ts;
    j->expanded = false;
  }
  while (head(j) && head(j)->ts + head(j)->dur <= j->play_ts) {
    pop_head(j);
    j->st.late++;
  }
  /* Decision offset: the audio at play_ts is here iff its transit is at most d. */
  int64_t d = now_us - j->ref_us - media_us(j, j->play_ts - j->ref_ts);
  const int64_t prev_cur_us = j->cur_us; /* a wait (EXPAND) leaves the reported delay alone */
  /* The unit of concealment when nothing later is here: the last packet's duration. */
  const int64_t unit = j->have_last && j->last_dur > 0 ? j->last_dur : j->cfg.frame_samples;

  for (int pass = 0; pass < MAX_PASSES; pass++) {
    slot *h = head(j);
    int64_t gap = h ? h->ts - j->play_ts : unit; /* missing samples before the next packet */
    bool consecutive = h && (!j->have_last || h->seq == j->last_seq + 1);
    out->timestamp = (uint32_t)j->play_ts;
    j->cur_us = d + queued_us - fastest;
    if (h && gap <= j->tol) {
      play_packet(j, h, d, T_low, queued_samples, out);
      return 0;
    }
    int64_t chunk = gap < unit ? gap : unit;
    if ((h && consecutive) || (!h && j->in_dtx)) {
      /* DTX: silence is stretched or cut directly. A packet that shows the gap was DTX ends any
       * waiting (what was expanded was the start of the pause), and the silence before it goes down
       * to the low target at once: nothing is lost by skipping silence. */
      if (h) {
        j->expanded = false;
        j->expand_run = 0;
        int64_t skip = d > T_low ? samples_of(j, d - T_low) : 0;
        if (skip >= gap - j->tol) skip = gap;
        if (skip > 0) {
          j->play_ts += skip;
          d -= media_us(j, skip);
          if (skip == gap) continue;
          gap -= skip;
          chunk = gap < unit ? gap : unit;
        }
      }
      out->kind = PARLEY__JITTER_SILENCE;
      j->in_dtx = true;
      j->st.silence++;
      if (d < T_low) return 0; /* hold (fill): grow */
      int64_t room = shrink_room(j, d, T_low, queued_samples);
      if (room > 3 * chunk / 4) room = 3 * chunk / 4;
      out->out_samples = (uint32_t)(chunk - room);
      j->play_ts += chunk;
      return 0;
    }
    /* Missing audio. Wait while it may still come: below the wait limit, or while nothing later is
     * here either (all late: a delay spike, not a loss), within the delay ceiling. */
    bool all_late = !h && d - fastest < j->max_delay_us;
    /* Except at or above the low target when the next packet carries the missing audio's FEC:
     * recovering it now costs near-original audio and no delay, where waiting costs an expansion,
     * and the delay it adds must then be shed by accelerating talk. */
    bool fec_next = h && h->fec && gap <= (int64_t)h->dur + j->tol && gap <= (int64_t)j->cfg.max_packet_samples;
    if ((d < T_wait && !(fec_next && d >= T_low)) || all_late) {
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
    /* Given up on this audio: the expansion so far stands in for its start. */
    j->expanded = false;
    if (j->expand_run >= chunk) {
      j->expand_run -= chunk;
      j->play_ts += chunk;
      d -= media_us(j, chunk);
      continue; /* the rest is a fresh decision */
    }
    if (fec_next) {
      emit_packet(j, h, out, PARLEY__JITTER_FEC);
      out->marker = false;
      out->span_samples = (uint32_t)gap;
      out->out_samples = (uint32_t)(gap - j->expand_run);
      consumed(j, h->seq - 1, j->play_ts, gap);
      j->play_ts = h->ts;
      j->expand_run = 0;
      j->st.fec_recoveries++;
      return 0;
    }
    /* Far enough above target (and something later is here): skip it outright. */
    int64_t over = d > T_low ? samples_of(j, d - T_low) : 0;
    if (h && over >= chunk) {
      int64_t skip = over < gap ? over : gap;
      j->play_ts += skip;
      d -= media_us(j, skip);
      j->expand_run = 0;
      continue;
    }
    out->kind = PARLEY__JITTER_CONCEAL;
    out->out_samples = (uint32_t)(chunk - j->expand_run);
    j->st.concealed++;
    j->st.concealed_samples += out->out_samples;
    if (!h) {
      j->gap_conceals++;
      j->gap_conceal_samples += out->out_samples;
    }
    j->expand_run = 0;
    j->play_ts += chunk;
    return 0;
  }
  /* Every pass moved play_ts without an action (long runs of covered or skipped audio): hand out a
   * tick of concealment; the next call goes on from the new position. */
  out->kind = PARLEY__JITTER_CONCEAL;
  out->out_samples = fill;
  j->st.concealed++;
  j->st.concealed_samples += fill;
  return 0;
}

void parley__jitter_get_stats(const parley__jitter *j, parley__jitter_stats *out) {
  if (!j || !out) return;
  *out = j->st;
  out->current_delay_ms = (double)j->cur_us / 1000.0;
  out->target_delay_ms = (double)j->target_us / 1000.0;
  out->jitter_ms = j->jitter_us / 1000.0;
}
