/* mixer.c: conference mixer with mix-minus, soft limiter and active-speaker ranking (see mixer.h).
 *
 * Owns, all allocated at create for max_participants: the participant slots, a dense list of the slots
 * in use (so a frame costs O(participants present), not O(max)), an open-addressing id -> slot table,
 * one input buffer and one output buffer per slot, and the float sum and full mix.
 *
 * One thread at a time. Everything after create is real-time safe: no allocation, lock, log or system
 * call; the per-frame work is bounded by participants * frame_samples, plus participants * top_k for
 * the ranking when places fall free.
 */
#include "engine/mixer.h"

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
  bool contributed; /* in the last run's sum */
  bool ranked;
} slot;

struct parley__mixer {
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
  float *in;  /* max * frame: inputs, scaled by gain in place during run */
  float *out; /* max * frame: mix-minus outputs */
  float *sum;
  float *full;
  uint32_t rank[PARLEY_MIXER_MAX_TOP_K]; /* slot indices, loudest first */
  size_t n_rank;
  uint64_t epoch;
  float attack;  /* smoothing coefficients per frame */
  float release;
  int32_t hold_frames;
  int32_t hangover_frames;
};

/* ---- sample kernels ----
 * Frames are 480 or 960 samples, so every kernel walks n (a multiple of 8) in 4-lane vectors, using
 * the GCC/clang vector extension: portable (SSE2, NEON, or scalar fallback) and vectorised at -O2,
 * where the compiler's own vectoriser would leave these loops scalar. Loads and stores go through
 * memcpy, so the caller's frame need not be aligned. */

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f load4(const float *p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void store4(float *p, v4f v) { memcpy(p, &v, sizeof v); }
/* mask lanes all-ones -> a, all-zeros -> b (comparisons give such masks). */
static inline v4f select4(v4i mask, v4f a, v4f b) { return (v4f)((mask & (v4i)a) | (~mask & (v4i)b)); }
static inline v4f splat4(float x) { return (v4f){x, x, x, x}; }

/* The limiter (curve in mixer.h), for finite x. Above the knee, z = (|x| - K) / (1 - K) clamped to
 * [0, 3] goes through p(z) = z (27 + z^2) / (27 + 9 z^2), the [3/2] Pade approximant of tanh, whose
 * derivative 9 (z^2 - 9)^2 / (27 + 9 z^2)^2 is >= 0, 1 at z = 0 and 0 at z = 3 where p = 1. It is
 * evaluated as 1 - p(z) = (3 - z)^3 / (27 + 9 z^2): each float step there is monotonic in z, so the
 * rounded curve is monotonic too (the direct form wobbles by an ulp near 1). */
static inline v4f limit4(v4f x) {
  const float k = PARLEY_MIXER_LIMIT_KNEE;
  const v4i sign_bit = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
  v4i sign = (v4i)x & sign_bit;
  v4f a = (v4f)((v4i)x & ~sign_bit);
  v4f z = (a - k) * (1.0f / (1.0f - k));
  z = select4(z < 0.0f, splat4(0.0f), z);
  z = select4(z > 3.0f, splat4(3.0f), z);
  v4f w = 3.0f - z;
  v4f q = (w * w * w) / (27.0f + 9.0f * (z * z));
  v4f y = 1.0f - (1.0f - k) * q;
  return (v4f)((v4i)select4(a <= k, a, y) | sign);
}

float parley__mixer_limit(float x) {
  if (isnan(x)) return 0.0f;
  return limit4(splat4(x))[0];
}

static void limit_block(float *restrict x, size_t n) {
  for (size_t i = 0; i < n; i += 4) store4(x + i, limit4(load4(x + i)));
}

/* Largest |x[i]|. */
static float peak_abs(const float *restrict x, size_t n) {
  const v4i abs_mask = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
  v4f p0 = splat4(0.0f), p1 = splat4(0.0f);
  for (size_t i = 0; i < n; i += 8) {
    v4f a0 = (v4f)((v4i)load4(x + i) & abs_mask), a1 = (v4f)((v4i)load4(x + i + 4) & abs_mask);
    p0 = select4(a0 > p0, a0, p0);
    p1 = select4(a1 > p1, a1, p1);
  }
  p0 = select4(p1 > p0, p1, p0);
  float m = p0[0];
  for (int k = 1; k < 4; k++) m = p0[k] > m ? p0[k] : m;
  return m;
}

/* dst = src with NaN -> 0, clamped to +-INPUT_CLAMP. */
static void copy_clamped(float *restrict dst, const float *restrict src, size_t n) {
  for (size_t i = 0; i < n; i += 4) {
    v4f v = load4(src + i);
    v = select4(v == v, v, splat4(0.0f));
    v = select4(v < -INPUT_CLAMP, splat4(-INPUT_CLAMP), v);
    v = select4(v > INPUT_CLAMP, splat4(INPUT_CLAMP), v);
    store4(dst + i, v);
  }
}

/* Scales x by g in place, adds it to sum and returns the energy of the scaled signal. */
static float scale_accumulate(float *restrict x, float *restrict sum, float g, size_t n) {
  v4f e0 = splat4(0.0f), e1 = splat4(0.0f);
  for (size_t i = 0; i < n; i += 8) {
    v4f v0 = load4(x + i) * g, v1 = load4(x + i + 4) * g;
    store4(x + i, v0);
    store4(x + i + 4, v1);
    store4(sum + i, load4(sum + i) + v0);
    store4(sum + i + 4, load4(sum + i + 4) + v1);
    e0 += v0 * v0;
    e1 += v1 * v1;
  }
  e0 += e1;
  return (e0[0] + e0[1]) + (e0[2] + e0[3]);
}

/* out = sum - own, then limited; the limiter pass runs only when a sample exceeds the knee. */
static void minus_limited(float *restrict out, const float *restrict sum, const float *restrict own,
                          size_t n) {
  const v4i abs_mask = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
  v4f p = splat4(0.0f);
  for (size_t i = 0; i < n; i += 4) {
    v4f v = load4(sum + i) - load4(own + i);
    store4(out + i, v);
    v4f a = (v4f)((v4i)v & abs_mask);
    p = select4(a > p, a, p);
  }
  /* Any lane over the knee (one horizontal test per frame, not per sample). */
  v4i over = p > PARLEY_MIXER_LIMIT_KNEE;
  if (over[0] | over[1] | over[2] | over[3]) limit_block(out, n);
}

/* ---- id table ---- */

static uint32_t home(const parley__mixer *m, uint32_t id) {
  return (uint32_t)((id * 0x9E3779B1u) >> (32 - m->table_bits));
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
  m->out = alloc_floats(max_participants * frame_samples);
  m->sum = alloc_floats(frame_samples);
  m->full = alloc_floats(frame_samples);
  if (!m->slots || !m->active || !m->free_slots || !m->table || !m->in || !m->out || !m->sum ||
      !m->full) {
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
              .used = true};
  m->active[m->n_active++] = si;
  m->table[pos] = si + 1;
  memset(m->out + (size_t)si * m->frame, 0, m->frame * sizeof(float));
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
  s->gain = gain;
  return 0;
}

int parley__mixer_set_mute(parley__mixer *m, uint32_t id, bool muted) {
  if (!m) return PARLEY_EINVAL;
  slot *s = find(m, id);
  if (!s) return PARLEY_ENOTFOUND;
  s->muted = muted;
  return 0;
}

int parley__mixer_put(parley__mixer *m, uint32_t id, const float *frame, bool voice) {
  if (!m || !frame) return PARLEY_EINVAL;
  slot *s = find(m, id);
  if (!s) return PARLEY_ENOTFOUND;
  copy_clamped(m->in + (size_t)(s - m->slots) * m->frame, frame, m->frame);
  s->has_frame = true;
  s->voice = voice;
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
  const size_t n = m->frame;
  memset(m->sum, 0, n * sizeof(float));

  for (size_t d = 0; d < m->n_active; d++) {
    uint32_t si = m->active[d];
    slot *s = &m->slots[si];
    float frame_db = PARLEY_MIXER_FLOOR_DB;
    s->contributed = s->has_frame && !s->muted && s->gain > 0.0f;
    if (s->contributed) {
      float e = scale_accumulate(m->in + (size_t)si * n, m->sum, s->gain, n);
      /* mean square -> dB, floored at FLOOR_DB (1e-10 = -100 dB). */
      frame_db = 10.0f * log10f(e / (float)n + 1e-10f);
    }
    float k = frame_db > s->level_db ? m->attack : m->release;
    s->level_db += k * (frame_db - s->level_db);
    if (s->has_frame && s->voice)
      s->vad_hold = m->hangover_frames;
    else if (s->vad_hold > 0)
      s->vad_hold--;
    s->has_frame = false;
  }

  memcpy(m->full, m->sum, n * sizeof(float));
  if (peak_abs(m->full, n) > PARLEY_MIXER_LIMIT_KNEE) limit_block(m->full, n);

  for (size_t d = 0; d < m->n_active; d++) {
    uint32_t si = m->active[d];
    float *out = m->out + (size_t)si * n;
    if (m->slots[si].contributed)
      minus_limited(out, m->sum, m->in + (size_t)si * n, n);
    else
      memcpy(out, m->full, n * sizeof(float));
  }

  bool changed = update_ranking(m);
  if (changed) m->epoch++;
  return changed ? 1 : 0;
}

const float *parley__mixer_full(const parley__mixer *m) { return m ? m->full : NULL; }

const float *parley__mixer_minus(const parley__mixer *m, uint32_t id) {
  if (!m) return NULL;
  const slot *s = find(m, id);
  return s ? m->out + (size_t)(s - m->slots) * m->frame : NULL;
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
