/* impair.c: the seeded network impairment model (see impair.h). Owns a copy of its config and the
 * parsed trace. parley__impair_new allocates and may read a file; parley__impair_packet only does
 * arithmetic on the model's own state (no allocation, locks or system calls). One thread at a time.
 *
 * Random draws are taken in a fixed order per packet whatever the outcome, so changing one
 * probability does not reshuffle every later decision of the same seed.
 */
#define _POSIX_C_SOURCE 200809L
#include "sim/impair.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "parley/parley.h"

struct parley__impair {
  parley__impair_config cfg; /* trace_text / trace_path cleared: the trace lives below */
  parley__rng rng;
  parley__impair_trace_point *trace;
  size_t n_trace;
  size_t trace_pos; /* last point at or before the previous send time */
  bool ge_bad;
  int64_t link_free_us;   /* rate limiter: when the serializer is free again */
  int64_t last_deliver_us; /* monotonic clamp */
  bool have_last;
  parley__impair_stats stats;
};

int parley__impair_ge_from_mean(double mean_loss_pct, double mean_burst_packets, parley__impair_ge *out) {
  if (!out || !(mean_loss_pct > 0.0 && mean_loss_pct < 100.0) || !(mean_burst_packets >= 1.0)) {
    return PARLEY_EINVAL;
  }
  /* Bad state always loses, good never: bursts are bad-state sojourns, geometric with mean
   * 1 / p_bad_to_good; the stationary bad share p_gb / (p_gb + p_bg) equals the loss rate L. */
  double loss = mean_loss_pct / 100.0;
  double p_bg = 1.0 / mean_burst_packets;
  double p_gb = loss * p_bg / (1.0 - loss);
  if (p_gb > 1.0) return PARLEY_EINVAL;
  out->p_good_to_bad = p_gb;
  out->p_bad_to_good = p_bg;
  out->loss_good = 0.0;
  out->loss_bad = 1.0;
  return 0;
}

static bool prob_ok(double p) { return p >= 0.0 && p <= 1.0; }
static bool pct_ok(double p) { return p >= 0.0 && p <= 100.0; }

static int validate(const parley__impair_config *c) {
  if (c->base_delay_us < 0 || c->jitter_sd_us < 0 || c->reorder_hold_us < 0 || c->dup_gap_us < 0) {
    return PARLEY_EINVAL;
  }
  if (!pct_ok(c->loss_pct) || !pct_ok(c->reorder_pct) || !pct_ok(c->dup_pct)) return PARLEY_EINVAL;
  if (!(c->rate_bytes_per_s >= 0.0) || isinf(c->rate_bytes_per_s)) return PARLEY_EINVAL;
  if (c->ge_enabled && (!prob_ok(c->ge.p_good_to_bad) || !prob_ok(c->ge.p_bad_to_good) ||
                        !prob_ok(c->ge.loss_good) || !prob_ok(c->ge.loss_bad))) {
    return PARLEY_EINVAL;
  }
  if (c->n_spikes < 0 || c->n_spikes > PARLEY__IMPAIR_MAX_SPIKES) return PARLEY_EINVAL;
  for (int i = 0; i < c->n_spikes; i++) {
    const parley__impair_spike *s = &c->spikes[i];
    if (s->peak_us < 0 || !(s->drain >= 0.0) || isinf(s->drain)) return PARLEY_EINVAL;
  }
  if (c->n_blackouts < 0 || c->n_blackouts > PARLEY__IMPAIR_MAX_BLACKOUTS) return PARLEY_EINVAL;
  for (int i = 0; i < c->n_blackouts; i++) {
    if (c->blackouts[i].length_us < 0) return PARLEY_EINVAL;
  }
  if (c->trace_text && c->trace_path) return PARLEY_EINVAL;
  return 0;
}

/* Parses "time_ms delay_ms lost" lines into a fresh array. */
static int parse_trace(const char *text, parley__impair_trace_point **out, size_t *n_out) {
  size_t cap = 0, n = 0;
  parley__impair_trace_point *pts = NULL;
  const char *p = text;
  while (*p) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    char line[256];
    if (len >= sizeof line) goto bad;
    memcpy(line, p, len);
    line[len] = '\0';
    p += len + (eol ? 1 : 0);
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *s = line;
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    if (*s == '\0') continue;
    char *end;
    errno = 0;
    double t = strtod(s, &end);
    if (end == s || errno) goto bad;
    s = end;
    double d = strtod(s, &end);
    if (end == s || errno) goto bad;
    s = end;
    long lost = strtol(s, &end, 10);
    if (end == s || (lost != 0 && lost != 1)) goto bad;
    while (*end == ' ' || *end == '\t' || *end == '\r') end++;
    if (*end != '\0') goto bad;
    if (!isfinite(t) || !isfinite(d) || t < 0 || d < 0 || t > 1e12 || d > 1e9) goto bad;
    int64_t t_us = (int64_t)llround(t * 1000.0);
    if (n > 0 && t_us < pts[n - 1].time_us) goto bad;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 64;
      parley__impair_trace_point *np = realloc(pts, ncap * sizeof *np);
      if (!np) {
        free(pts);
        return PARLEY_ENOMEM;
      }
      pts = np;
      cap = ncap;
    }
    pts[n].time_us = t_us;
    pts[n].delay_us = (int64_t)llround(d * 1000.0);
    pts[n].lost = lost == 1;
    n++;
  }
  *out = pts;
  *n_out = n;
  return 0;
bad:
  free(pts);
  return PARLEY_EPARSE;
}

static int read_file_text(const char *path, char **out) {
  FILE *f = fopen(path, "rb");
  if (!f) return PARLEY_EIO;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  if (!buf) {
    fclose(f);
    return PARLEY_ENOMEM;
  }
  for (;;) {
    if (n + 1 >= cap) {
      if (cap > ((size_t)64 << 20)) break; /* traces are small; refuse absurd files below */
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        fclose(f);
        return PARLEY_ENOMEM;
      }
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  bool err = ferror(f) || n + 1 >= cap;
  fclose(f);
  if (err) {
    free(buf);
    return PARLEY_EIO;
  }
  buf[n] = '\0';
  if (memchr(buf, '\0', n)) {
    free(buf);
    return PARLEY_EPARSE;
  }
  *out = buf;
  return 0;
}

parley__impair *parley__impair_new(const parley__impair_config *cfg, uint64_t seed, int *err) {
  int e = cfg ? validate(cfg) : PARLEY_EINVAL;
  parley__impair *im = NULL;
  if (e == 0) {
    im = calloc(1, sizeof *im);
    if (!im) e = PARLEY_ENOMEM;
  }
  if (e == 0) {
    im->cfg = *cfg;
    im->cfg.trace_text = NULL;
    im->cfg.trace_path = NULL;
    parley__rng_seed(&im->rng, seed);
    if (cfg->trace_text) {
      e = parse_trace(cfg->trace_text, &im->trace, &im->n_trace);
    } else if (cfg->trace_path) {
      char *text = NULL;
      e = read_file_text(cfg->trace_path, &text);
      if (e == 0) {
        e = parse_trace(text, &im->trace, &im->n_trace);
        free(text);
      }
    }
  }
  if (e != 0) {
    parley__impair_free(im);
    if (err) *err = e;
    return NULL;
  }
  if (err) *err = 0;
  return im;
}

void parley__impair_free(parley__impair *im) {
  if (!im) return;
  free(im->trace);
  free(im);
}

/* The trace point in force at send_us, or NULL. Send times are mostly non-decreasing, so resume from
 * the last position; an earlier time restarts the search (still correct, just slower). */
static const parley__impair_trace_point *trace_at(parley__impair *im, int64_t send_us) {
  if (im->n_trace == 0 || send_us < im->trace[0].time_us) return NULL;
  if (im->trace[im->trace_pos].time_us > send_us) im->trace_pos = 0;
  while (im->trace_pos + 1 < im->n_trace && im->trace[im->trace_pos + 1].time_us <= send_us) {
    im->trace_pos++;
  }
  return &im->trace[im->trace_pos];
}

int parley__impair_packet(parley__impair *im, int64_t send_us, size_t bytes, parley__impair_verdict *out) {
  if (!im || !out) return PARLEY_EINVAL;
  const parley__impair_config *c = &im->cfg;
  out->n_deliveries = 0;
  im->stats.packets++;

  /* Fixed draw order: GE transition, GE loss, random loss, jitter, reorder, duplicate. */
  double u_ge_move = parley__rng_uniform(&im->rng);
  double u_ge_loss = parley__rng_uniform(&im->rng);
  double u_loss = parley__rng_uniform(&im->rng);
  double g_jitter = parley__rng_gauss(&im->rng);
  double u_reorder = parley__rng_uniform(&im->rng);
  double u_dup = parley__rng_uniform(&im->rng);

  bool lost = false;
  for (int i = 0; i < c->n_blackouts; i++) {
    const parley__impair_blackout *b = &c->blackouts[i];
    if (send_us >= b->start_us && send_us - b->start_us < b->length_us) lost = true;
  }
  const parley__impair_trace_point *tp = trace_at(im, send_us);
  if (tp && tp->lost) lost = true;
  if (c->ge_enabled) {
    if (im->ge_bad) {
      if (u_ge_move < c->ge.p_bad_to_good) im->ge_bad = false;
    } else if (u_ge_move < c->ge.p_good_to_bad) {
      im->ge_bad = true;
    }
    if (u_ge_loss < (im->ge_bad ? c->ge.loss_bad : c->ge.loss_good)) lost = true;
  }
  if (u_loss * 100.0 < c->loss_pct) lost = true;

  /* Every sent packet occupies the serializer: losses happen further down the path. */
  int64_t t = send_us;
  if (c->rate_bytes_per_s > 0.0) {
    int64_t start = send_us > im->link_free_us ? send_us : im->link_free_us;
    int64_t tx_us = (int64_t)llround((double)bytes * 1e6 / c->rate_bytes_per_s);
    im->link_free_us = start + tx_us;
    t = im->link_free_us;
  }
  if (lost) {
    im->stats.dropped++;
    return 0;
  }

  int64_t delay = c->base_delay_us;
  if (tp) delay += tp->delay_us;
  if (c->jitter_sd_us > 0) {
    double extra = (double)c->jitter_sd_us * (2.0 + g_jitter);
    if (extra > 0.0) delay += (int64_t)llround(extra);
  }
  for (int i = 0; i < c->n_spikes; i++) {
    const parley__impair_spike *s = &c->spikes[i];
    if (send_us < s->start_us) continue;
    double drain = s->drain > 0.0 ? s->drain : 1.0;
    double extra = (double)s->peak_us - (double)(send_us - s->start_us) * drain;
    if (extra > 0.0) delay += (int64_t)llround(extra);
  }
  if (u_reorder * 100.0 < c->reorder_pct) {
    delay += c->reorder_hold_us;
    im->stats.reordered++;
  }
  int64_t deliver = t + delay;
  if (c->monotonic && im->have_last && deliver < im->last_deliver_us) deliver = im->last_deliver_us;
  im->last_deliver_us = deliver;
  im->have_last = true;

  out->deliver_us[0] = deliver;
  out->n_deliveries = 1;
  if (u_dup * 100.0 < c->dup_pct) {
    out->deliver_us[1] = deliver + c->dup_gap_us;
    out->n_deliveries = 2;
    im->stats.duplicated++;
  }
  return out->n_deliveries;
}

void parley__impair_get_stats(const parley__impair *im, parley__impair_stats *out) {
  if (!im || !out) return;
  *out = im->stats;
}
