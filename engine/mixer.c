/* mixer.c: conference mixer with mix-minus, look-ahead limiter and active-speaker ranking (see mixer.h).
 *
 * Owns, all allocated at create for max_participants: the participant slots, a dense list of the slots
 * in use (so a frame costs O(participants present), not O(max)), an open-addressing id -> slot table,
 * one input buffer and one output buffer (with its limiter state) per slot, and the float sum and full
 * mix.
 *
 * One thread at a time. Everything after create is real-time safe: no allocation, lock, log or system
 * call; the per-frame work is bounded by participants * frame_samples, plus participants * top_k for
 * the ranking when places fall free.
 */
#include "engine/mixer.h"
#include "base/thread_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parley/parley.h"

#define ALIGN 64
/* Input samples are clamped to this before mixing so that even max_participants * max gain * clamp
 * stays finite (no inf - inf = NaN in the mix-minus). Real audio is in [-1, 1]. */
#define INPUT_CLAMP 8.0f
/* A candidate quieter than this is not ranked (VAD true on digital silence). */
#define RANK_MIN_DB (-80.0f)

/* One output's limiter state, carried from frame to frame. */
typedef struct limiter {
  float gain;      /* gain at the start of the next output (the end of the last one) */
  float tail_peak; /* peak |x| of the look-ahead block */
} limiter;

typedef struct slot {
  uint32_t id;
  uint32_t dense;   /* index in m->active while in use */
  float gain;
  float level_db;   /* smoothed level of the gained contribution */
  int32_t vad_hold; /* frames of VAD hangover left; > 0 means "talking" */
  int32_t beat;     /* consecutive frames this one beat its ranking target by the margin */
  bool used;
  bool muted;
  bool has_frame;
  bool voice;
  bool ranked;
  float energy; /* of its gained frame, as added to the sum */
  limiter lim;  /* of its mix-minus */
} slot;

struct parley__mixer {
  parley__owner owner; /* debug builds: the audio thread (put and run) */
  size_t max;
  size_t frame;
  size_t top_k;
  slot *slots;
  uint32_t *active; /* slot indices in use, dense */
  size_t n_active;
  uint32_t *free_slots;
  size_t n_free;
  uint32_t *table; /* slot index + 1, 0 = empty; linear probing */
  uint32_t table_mask;
  unsigned table_bits;
  float *in;  /* max * frame: inputs as put (clamped, not yet gained) */
  float *out; /* max * (frame + BLOCK): mix-minus outputs, each followed by its look-ahead */
  float *sum;  /* of the frames put since the last run, added as they come */
  bool stale;  /* a frame in the sum no longer matches its slot (gain, mute, put again, removed) */
  float *full; /* frame + BLOCK, as out */
  float *zeros; /* frame: the "own" of an output with no contribution */
  limiter full_lim;
  float lim_release; /* limiter gain rise per block */
  float ramp[PARLEY_MIXER_LIMIT_BLOCK]; /* (i + 1) / BLOCK: the steps of a gain ramp across a block */
  uint32_t rank[PARLEY_MIXER_MAX_TOP_K]; /* slot indices, loudest first */
  size_t n_rank;
  uint64_t epoch;
  float attack;  /* smoothing coefficients per frame */
  float release;
  int32_t hold_frames;
  int32_t hangover_frames;
};

/* ---- sample kernels ----
 * Frames are 480 or 960 samples: every kernel walks them in chunks of LANES (or blocks of LIMIT_BLOCK)
 * with a constant-length inner loop, which gcc -O2 vectorises (its cheap cost model takes only loops
 * whose trip count is a known multiple of the vector width). Reductions keep one accumulator per lane,
 * so no float sum is reassociated and results do not depend on the vector width. */

enum {
  LANES = 8,
  BLOCK = PARLEY_MIXER_LIMIT_BLOCK,
  MAX_BLOCKS = 960 / BLOCK,
  PEAKS = (MAX_BLOCKS + 1 + 7) / 8 * 8 /* per block of a frame and its look-ahead, padded to 8k */
};

/* Bits of |x| for the range checks below: for floats >= 0 the integer order of the bits is the
 * numeric order, NaN above all, so (bits of INPUT_CLAMP) - (bits of |x|) is negative exactly when x is
 * NaN or beyond the clamp; OR-ing those together flags a frame with one vector op per chunk. */
static inline int32_t abs_bits(float x) {
  int32_t a;
  memcpy(&a, &x, sizeof a);
  return a & INT32_MAX;
}

/* True when every sample is a number within +-INPUT_CLAMP. */
static bool in_range(const float *restrict x, size_t n) {
  const int32_t limit = abs_bits(INPUT_CLAMP);
  int32_t over[LANES] = {0};
  for (size_t i = 0; i < n; i += LANES)
#pragma GCC unroll 8 /* unrolled first, over[] stays in registers */
    for (size_t l = 0; l < LANES; l++) over[l] |= limit - abs_bits(x[i + l]);
  return (over[0] | over[1] | over[2] | over[3] | over[4] | over[5] | over[6] | over[7]) >= 0;
}

/* x with NaN -> 0, clamped to +-INPUT_CLAMP, in place. */
static void clamp_frame(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float v = x[i] == x[i] ? x[i] : 0.0f;
    v = v < -INPUT_CLAMP ? -INPUT_CLAMP : v;
    x[i] = v > INPUT_CLAMP ? INPUT_CLAMP : v;
  }
}

/* Adds g * x to sum and returns the energy of g * x; with copy, also copies x to dst in the same pass.
 * (copy is a constant at each call, so each call gets a loop of its own.) */
static inline float accumulate(float *restrict sum, float *restrict dst, const float *restrict x, float g,
                               size_t n, bool copy) {
  float e[LANES] = {0};
  for (size_t i = 0; i < n; i += LANES)
#pragma GCC unroll 8 /* unrolled first, e[] stays in registers (else a store and load per chunk) */
    for (size_t l = 0; l < LANES; l++) {
      float v = g * x[i + l];
      if (copy) dst[i + l] = x[i + l];
      sum[i + l] += v;
      e[l] += v * v;
    }
  return ((e[0] + e[4]) + (e[1] + e[5])) + ((e[2] + e[6]) + (e[3] + e[7]));
}

static inline float max2(float a, float b) { return a > b ? a : b; }

static inline int32_t imax(int32_t a, int32_t b) { return a > b ? a : b; }

/* dst = sum - g * own over one block, returning the block's peak |dst| (finite samples) in the same
 * pass: one maximum per lane, folded at the end (a single running max would be one long dependency
 * chain). The maxima are taken on the bits of |dst| (abs_bits: the same order for finite values), as
 * integers: gcc turns a float a > b ? a : b into a vector max only under -ffinite-math-only, and left
 * this loop scalar. */
static inline float minus_block(float *restrict dst, const float *restrict sum, const float *restrict own,
                                float g) {
  int32_t q[LANES] = {0};
  for (size_t i = 0; i < BLOCK; i += LANES)
#pragma GCC unroll 8
    for (size_t l = 0; l < LANES; l++) {
      float v = sum[i + l] - g * own[i + l];
      dst[i + l] = v;
      q[l] = imax(q[l], abs_bits(v));
    }
  int32_t top = imax(imax(imax(q[0], q[4]), imax(q[1], q[5])), imax(imax(q[2], q[6]), imax(q[3], q[7])));
  float peak;
  memcpy(&peak, &top, sizeof peak);
  return peak;
}

/* x *= a gain ramping linearly from g0 (exclusive) to g1 (reached on the last sample). */
static void ramp_block(float *restrict x, const float *restrict steps, float g0, float g1) {
  float d = g1 - g0;
  for (int i = 0; i < BLOCK; i++) x[i] *= g0 + d * steps[i];
}

/* One output's limiter (mixer.h): z holds n + BLOCK samples, the first n being the output and the last
 * BLOCK the look-ahead, which moves to the front next frame. Writes z = [last tail | sum - g * own],
 * computes the gain at each block boundary from the peaks of the two blocks around it, then applies it
 * ramped across each block. Below the ceiling every gain is exactly 1 and z is left bit-exact. */
static void mix_out(const parley__mixer *m, float *restrict z, limiter *st, const float *restrict own,
                    float g) {
  const size_t n = m->frame;
  const size_t nb = n / BLOCK;
  /* peak[b]: of block b of z; target[b]: the most gain at boundary b (between blocks b - 1 and b)
   * that keeps both under the ceiling. Fixed-length loops (unused entries padded), so they vectorise. */
  float peaks[1 + PEAKS] = {0}, target[PEAKS], gain[MAX_BLOCKS + 1];
  float *peak = peaks + 1; /* peak[-1] = 0 lets the target loop start at 0 */
  memcpy(z, z + n, BLOCK * sizeof *z);
  peak[0] = st->tail_peak;
  for (size_t b = 1; b <= nb; b++)
    peak[b] = minus_block(z + b * BLOCK, m->sum + (b - 1) * BLOCK, own + (b - 1) * BLOCK, g);
  for (size_t b = 0; b < PEAKS; b++) {
    const float c = PARLEY_MIXER_LIMIT_CEILING;
    float p = max2(peak[b], peak[b - 1]);
    target[b] = c / (p > c ? p : c);
  }
  gain[0] = st->gain;
  bool unity = gain[0] == 1.0f;
  for (size_t b = 1; b <= nb; b++) {
    float rise = gain[b - 1] * m->lim_release;
    gain[b] = rise < target[b] ? rise : target[b];
    unity &= gain[b] == 1.0f;
  }
  st->gain = gain[nb];
  st->tail_peak = peak[nb];
  if (unity) return;
  for (size_t b = 0; b < nb; b++)
    if (gain[b] != 1.0f || gain[b + 1] != 1.0f) ramp_block(z + b * BLOCK, m->ramp, gain[b], gain[b + 1]);
}

/* ---- id table ---- */

static float *out_of(const parley__mixer *m, uint32_t si) { return m->out + (size_t)si * (m->frame + BLOCK); }

/* Position of id's probe run: the top bits of a full 32-bit mix of id. A plain multiplicative
 * (Fibonacci) hash clusters ids that are themselves multiples of its constant into a few runs (probes
 * of ~100 for 1000 such ids); this xorshift-multiply finalizer spreads every pattern tried (sequential,
 * strided, shifted, golden-ratio multiples) to ~1.5 probes at the table's half load. */
static uint32_t home(const parley__mixer *m, uint32_t id) {
  uint32_t h = id;
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return h >> (32 - m->table_bits);
}

/* Table position holding id, or the empty position where it would go. */
static uint32_t probe(const parley__mixer *m, uint32_t id) {
  uint32_t i = home(m, id);
  while (m->table[i] != 0 && m->slots[m->table[i] - 1].id != id) i = (i + 1) & m->table_mask;
  return i;
}

static slot *find(const parley__mixer *m, uint32_t id) {
  uint32_t e = m->table[probe(m, id)];
  return e ? &m->slots[e - 1] : NULL;
}

/* Removes position i, shifting later entries of the same probe run back (no tombstones). */
static void table_delete(parley__mixer *m, uint32_t i) {
  uint32_t j = i;
  for (;;) {
    m->table[i] = 0;
    for (;;) {
      j = (j + 1) & m->table_mask;
      if (m->table[j] == 0) return;
      uint32_t h = home(m, m->slots[m->table[j] - 1].id);
      /* Entry j may move to i only if its home is not cyclically inside (i, j]. */
      bool inside = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (!inside) break;
    }
    m->table[i] = m->table[j];
    i = j;
  }
}

/* ---- create / destroy ---- */

static float *alloc_floats(size_t n) {
  size_t bytes = (n * sizeof(float) + ALIGN - 1) / ALIGN * ALIGN;
  float *p = aligned_alloc(ALIGN, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

parley__mixer *parley__mixer_new(size_t max_participants, size_t frame_samples, size_t top_k) {
  if (max_participants < 1 || max_participants > PARLEY_MIXER_MAX_PARTICIPANTS) return NULL;
  if (frame_samples != 480 && frame_samples != 960) return NULL;
  if (top_k < 1 || top_k > PARLEY_MIXER_MAX_TOP_K) return NULL;
  parley__mixer *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->max = max_participants;
  m->frame = frame_samples;
  m->top_k = top_k;
  m->table_bits = 3;
  while ((1u << m->table_bits) < 2 * max_participants) m->table_bits++;
  m->table_mask = (1u << m->table_bits) - 1;
  m->slots = calloc(max_participants, sizeof *m->slots);
  m->active = calloc(max_participants, sizeof *m->active);
  m->free_slots = calloc(max_participants, sizeof *m->free_slots);
  m->table = calloc((size_t)m->table_mask + 1, sizeof *m->table);
  m->in = alloc_floats(max_participants * frame_samples);
  m->out = alloc_floats(max_participants * (frame_samples + BLOCK));
  m->sum = alloc_floats(frame_samples);
  m->full = alloc_floats(frame_samples + BLOCK);
  m->zeros = alloc_floats(frame_samples);
  if (!m->slots || !m->active || !m->free_slots || !m->table || !m->in || !m->out || !m->sum ||
      !m->full || !m->zeros) {
    parley__mixer_free(m);
    return NULL;
  }
  /* Hand out low slot indices first. */
  for (size_t i = 0; i < max_participants; i++)
    m->free_slots[i] = (uint32_t)(max_participants - 1 - i);
  m->n_free = max_participants;
  float frame_ms = (float)frame_samples / 48.0f;
  m->attack = 1.0f - expf(-frame_ms / PARLEY_MIXER_ATTACK_MS);
  m->release = 1.0f - expf(-frame_ms / PARLEY_MIXER_RELEASE_MS);
  m->hold_frames = (int32_t)ceilf((float)PARLEY_MIXER_RANK_HOLD_MS / frame_ms);
  m->hangover_frames = (int32_t)ceilf((float)PARLEY_MIXER_VAD_HANGOVER_MS / frame_ms);
  m->full_lim = (limiter){.gain = 1.0f};
  for (int i = 0; i < BLOCK; i++) m->ramp[i] = (float)(i + 1) / BLOCK;
  m->lim_release = powf(10.0f, PARLEY_MIXER_LIMIT_RELEASE_DB_S * (BLOCK / 48000.0f) / 20.0f);
  return m;
}

void parley__mixer_free(parley__mixer *m) {
  if (!m) return;
  free(m->slots);
  free(m->active);
  free(m->free_slots);
  free(m->table);
  free(m->in);
  free(m->out);
  free(m->sum);
  free(m->full);
  free(m->zeros);
  free(m);
}

size_t parley__mixer_frame_samples(const parley__mixer *m) { return m ? m->frame : 0; }
size_t parley__mixer_count(const parley__mixer *m) { return m ? m->n_active : 0; }

/* ---- membership and settings ---- */

static void rank_remove_at(parley__mixer *m, size_t pos) {
  m->slots[m->rank[pos]].ranked = false;
  m->slots[m->rank[pos]].beat = 0;
  memmove(&m->rank[pos], &m->rank[pos + 1], (m->n_rank - pos - 1) * sizeof m->rank[0]);
  m->n_rank--;
}

/* Inserts slot s before the first member quieter than it. Caller checks there is room. */
static void rank_insert(parley__mixer *m, uint32_t s) {
  size_t pos = 0;
  while (pos < m->n_rank && m->slots[m->rank[pos]].level_db >= m->slots[s].level_db) pos++;
  memmove(&m->rank[pos + 1], &m->rank[pos], (m->n_rank - pos) * sizeof m->rank[0]);
  m->rank[pos] = s;
  m->n_rank++;
  m->slots[s].ranked = true;
  m->slots[s].beat = 0;
}

int parley__mixer_add(parley__mixer *m, uint32_t id) {
  if (!m) return PARLEY_EINVAL;
  uint32_t pos = probe(m, id);
  if (m->table[pos] != 0) return PARLEY_EINVAL;
  if (m->n_free == 0) return PARLEY_EFULL;
  uint32_t si = m->free_slots[--m->n_free];
  slot *s = &m->slots[si];
  *s = (slot){.id = id,
              .dense = (uint32_t)m->n_active,
              .gain = 1.0f,
              .level_db = PARLEY_MIXER_FLOOR_DB,
              .used = true,
              .lim = {.gain = 1.0f}};
  m->active[m->n_active++] = si;
  m->table[pos] = si + 1;
  memset(out_of(m, si), 0, (m->frame + BLOCK) * sizeof(float));
  return 0;
}

int parley__mixer_remove(parley__mixer *m, uint32_t id) {
  if (!m) return PARLEY_EINVAL;
  uint32_t pos = probe(m, id);
  if (m->table[pos] == 0) return PARLEY_ENOTFOUND;
  uint32_t si = m->table[pos] - 1;
  slot *s = &m->slots[si];
  if (s->ranked) {
    for (size_t r = 0; r < m->n_rank; r++)
      if (m->rank[r] == si) {
        rank_remove_at(m, r);
        break;
      }
    m->epoch++;
  }
  if (s->has_frame) m->stale = true;
  table_delete(m, pos);
  uint32_t last = m->active[--m->n_active];
  m->active[s->dense] = last;
  m->slots[last].dense = s->dense;
  s->used = false;
  m->free_slots[m->n_free++] = si;
  return 0;
}

int parley__mixer_set_gain(parley__mixer *m, uint32_t id, float gain) {
  if (!m || isnan(gain)) return PARLEY_EINVAL;
  if (!(gain >= 0.0f && gain <= PARLEY_MIXER_MAX_GAIN)) return PARLEY_ERANGE;
  slot *s = find(m, id);
  if (!s) return PARLEY_ENOTFOUND;
  if (s->has_frame && gain != s->gain) m->stale = true;
  s->gain = gain;
  return 0;
}

int parley__mixer_set_mute(parley__mixer *m, uint32_t id, bool muted) {
  if (!m) return PARLEY_EINVAL;
  slot *s = find(m, id);
  if (!s) return PARLEY_ENOTFOUND;
  if (s->has_frame && muted != s->muted) m->stale = true;
  s->muted = muted;
  return 0;
}

/* In this run's sum. */
static bool contributes(const slot *s) { return s->has_frame && !s->muted && s->gain > 0.0f; }

int parley__mixer_put(parley__mixer *m, uint32_t id, const float *frame, bool voice) {
  if (!m || !frame) return PARLEY_EINVAL;
  PARLEY__OWNER_CHECK(&m->owner, "parley__mixer_put (the audio thread's)");
  slot *s = find(m, id);
  if (!s) return PARLEY_ENOTFOUND;
  float *in = m->in + (size_t)(s - m->slots) * m->frame;
  if (s->has_frame) m->stale = true; /* the first one is in the sum */
  s->has_frame = true;
  s->voice = voice;
  /* Summed as it is copied, so run reads each input once, not twice. A frame out of range is
   * clamped and the sum left to run to rebuild (rare: real audio is within +-1). */
  if (!in_range(frame, m->frame)) {
    memcpy(in, frame, m->frame * sizeof *in);
    clamp_frame(in, m->frame);
    m->stale = true;
  } else if (!m->stale && contributes(s)) {
    s->energy = accumulate(m->sum, in, frame, s->gain, m->frame, true);
  } else {
    memcpy(in, frame, m->frame * sizeof *in);
  }
  return 0;
}

/* ---- per frame ---- */

static bool is_candidate(const slot *s) {
  return s->used && !s->muted && s->vad_hold > 0 && s->level_db > RANK_MIN_DB;
}

/* Updates the ranking from this frame's levels (rules in mixer.h). True if it changed. */
static bool update_ranking(parley__mixer *m) {
  bool changed = false;
  const float margin = PARLEY_MIXER_RANK_MARGIN_DB;

  /* Members that stopped talking leave at once. */
  for (size_t r = 0; r < m->n_rank;) {
    if (!is_candidate(&m->slots[m->rank[r]])) {
      rank_remove_at(m, r);
      changed = true;
    } else {
      r++;
    }
  }

  /* Order among members: a member overtakes the one above it after beating it for hold frames. */
  if (m->n_rank > 0) m->slots[m->rank[0]].beat = 0;
  for (size_t r = 1; r < m->n_rank; r++) {
    slot *above = &m->slots[m->rank[r - 1]];
    slot *me = &m->slots[m->rank[r]];
    if (me->level_db > above->level_db + margin) {
      if (++me->beat >= m->hold_frames) {
        uint32_t t = m->rank[r - 1];
        m->rank[r - 1] = m->rank[r];
        m->rank[r] = t;
        me->beat = 0;
        above->beat = 0;
        changed = true;
      }
    } else {
      me->beat = 0;
    }
  }

  /* Free places fill at once with the loudest candidates. */
  while (m->n_rank < m->top_k) {
    int32_t best = -1;
    for (size_t d = 0; d < m->n_active; d++) {
      uint32_t si = m->active[d];
      const slot *s = &m->slots[si];
      if (s->ranked || !is_candidate(s)) continue;
      if (best < 0 || s->level_db > m->slots[best].level_db) best = (int32_t)si;
    }
    if (best < 0) break;
    rank_insert(m, (uint32_t)best);
    changed = true;
  }

  /* Full: a non-member displaces the weakest member after beating it by the margin for hold frames. */
  if (m->n_rank == m->top_k) {
    size_t weakest = 0;
    for (size_t r = 1; r < m->n_rank; r++)
      if (m->slots[m->rank[r]].level_db < m->slots[m->rank[weakest]].level_db) weakest = r;
    float bar = m->slots[m->rank[weakest]].level_db + margin;
    int32_t winner = -1;
    for (size_t d = 0; d < m->n_active; d++) {
      uint32_t si = m->active[d];
      slot *s = &m->slots[si];
      if (s->ranked) continue;
      if (is_candidate(s) && s->level_db > bar) {
        if (++s->beat >= m->hold_frames && (winner < 0 || s->level_db > m->slots[winner].level_db))
          winner = (int32_t)si;
      } else {
        s->beat = 0;
      }
    }
    if (winner >= 0) {
      rank_remove_at(m, weakest);
      rank_insert(m, (uint32_t)winner);
      changed = true;
    }
  } else {
    for (size_t d = 0; d < m->n_active; d++) {
      slot *s = &m->slots[m->active[d]];
      if (!s->ranked) s->beat = 0;
    }
  }
  return changed;
}

int parley__mixer_run(parley__mixer *m) {
  if (!m) return PARLEY_EINVAL;
  PARLEY__OWNER_CHECK(&m->owner, "parley__mixer_run (the audio thread's)");
  const size_t n = m->frame;
  if (m->stale) { /* rebuild the sum from the inputs as they stand now */
    memset(m->sum, 0, n * sizeof(float));
    for (size_t d = 0; d < m->n_active; d++) {
      slot *s = &m->slots[m->active[d]];
      const float *in = m->in + (size_t)m->active[d] * n;
      if (contributes(s)) s->energy = accumulate(m->sum, NULL, in, s->gain, n, false);
    }
    m->stale = false;
  }

  for (size_t d = 0; d < m->n_active; d++) {
    slot *s = &m->slots[m->active[d]];
    float frame_db = PARLEY_MIXER_FLOOR_DB;
    /* mean square -> dB, floored at FLOOR_DB (1e-10 = -100 dB). */
    if (contributes(s)) frame_db = 10.0f * log10f(s->energy / (float)n + 1e-10f);
    float k = frame_db > s->level_db ? m->attack : m->release;
    s->level_db += k * (frame_db - s->level_db);
    if (s->has_frame && s->voice)
      s->vad_hold = m->hangover_frames;
    else if (s->vad_hold > 0)
      s->vad_hold--;
  }

  mix_out(m, m->full, &m->full_lim, m->zeros, 1.0f);
  for (size_t d = 0; d < m->n_active; d++) {
    uint32_t si = m->active[d];
    slot *s = &m->slots[si];
    /* Recomputing gain * input gives the very float that went into the sum, so the difference is
     * exact; the one who added nothing subtracts zeros (x - +0 == x, bit for bit, -0 included). */
    if (contributes(s))
      mix_out(m, out_of(m, si), &s->lim, m->in + (size_t)si * n, s->gain);
    else
      mix_out(m, out_of(m, si), &s->lim, m->zeros, 1.0f);
    s->has_frame = false;
  }
  memset(m->sum, 0, n * sizeof(float)); /* for the next frame's puts */

  bool changed = update_ranking(m);
  if (changed) m->epoch++;
  return changed ? 1 : 0;
}

const float *parley__mixer_full(const parley__mixer *m) { return m ? m->full : NULL; }

const float *parley__mixer_minus(const parley__mixer *m, uint32_t id) {
  if (!m) return NULL;
  const slot *s = find(m, id);
  return s ? out_of(m, (uint32_t)(s - m->slots)) : NULL;
}

int parley__mixer_speakers(const parley__mixer *m, uint32_t *ids, size_t cap) {
  if (!m || (!ids && cap > 0)) return PARLEY_EINVAL;
  size_t n = m->n_rank < cap ? m->n_rank : cap;
  for (size_t r = 0; r < n; r++) ids[r] = m->slots[m->rank[r]].id;
  return (int)n;
}

uint64_t parley__mixer_speakers_epoch(const parley__mixer *m) { return m ? m->epoch : 0; }

int parley__mixer_level_db(const parley__mixer *m, uint32_t id, float *level_db) {
  if (!m || !level_db) return PARLEY_EINVAL;
  const slot *s = find(m, id);
  if (!s) return PARLEY_ENOTFOUND;
  *level_db = s->level_db;
  return 0;
}
