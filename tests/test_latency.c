/* test_latency.c: parley__call_pipeline_delays (engine/latency.h) reports a started call's algorithmic
 * floor from its live chains: Opus's lookahead at 48 kHz (2.5 ms + 4 ms of delay compensation = 312
 * samples), the preprocessor's one 10 ms block (it runs for the VAD even with AEC, NS and AGC off),
 * resampler delays only off 48 kHz, the device's capture fill (no output buffering without audio I/O),
 * and the sum. Two engines on loopback with no audio I/O; media need not flow. */
#include <criterion/criterion.h>
#include <string.h>

#include "engine/latency.h"
#include "parley/parley.h"
#include "tests/call_helpers.h"

static void cfg_init(parley_engine_config *c, int frame_ms, int rate_hz, bool dsp) {
  parley_engine_config_init(c);
  c->loopback_candidates = true;
  c->ipv6 = false;
  c->frame_ms = frame_ms;
  c->device_rate_hz = rate_hz;
  c->echo_cancellation = dsp;
  c->noise_suppression = dsp;
  c->agc = false;
}

/* Negotiates a (offerer) with b and starts both. */
static void start_pair(parley_call *a, parley_call *b) {
  static char offer[8192], answer[8192];
  th_negotiate(a, b, offer, answer, sizeof offer);
}

typedef struct pair {
  parley_engine *ea, *eb;
  parley_call *a, *b;
} pair;

static void pair_new(pair *p, int frame_ms, int rate_hz, bool dsp) {
  parley_engine_config c;
  cfg_init(&c, frame_ms, rate_hz, dsp);
  cr_assert_eq(parley_engine_new(&c, &p->ea), 0);
  cr_assert_eq(parley_engine_new(&c, &p->eb), 0);
  cr_assert_eq(parley_call_new(p->ea, &p->a), 0);
  cr_assert_eq(parley_call_new(p->eb, &p->b), 0);
}

static void pair_free(pair *p) {
  cr_expect_eq(parley_call_free(p->a), 0);
  cr_expect_eq(parley_call_free(p->b), 0);
  parley_engine_free(p->ea);
  parley_engine_free(p->eb);
}

static double sum(const parley__pipeline_delays *d) {
  return d->input_ms + d->period_ms + d->send_resampler_ms + d->echo_ms + d->lookahead_ms + d->jitter_min_ms +
         d->recv_resampler_ms + d->output_ms;
}

Test(latency, floor_at_48k_with_preprocessor) {
  for (int f = 10; f <= 20; f += 10) {
    pair p;
    pair_new(&p, f, 48000, true);
    parley__pipeline_delays d;
    cr_expect_eq(parley__call_pipeline_delays(p.a, &d), PARLEY_ESTATE, "not started yet");
    start_pair(p.a, p.b);
    cr_assert_eq(parley__call_pipeline_delays(p.a, &d), 0);
    cr_expect_eq(d.device_rate_hz, 48000);
    cr_expect_float_eq(d.frame_ms, f, 1e-9);
    cr_expect_float_eq(d.period_ms, f, 1e-9);
    /* No audio I/O: the device buffers nothing beyond its period: capture fill in, nothing out. */
    cr_expect(d.device_reported);
    cr_expect_float_eq(d.input_ms, f, 1e-9);
    cr_expect_float_eq(d.output_ms, 0, 1e-9);
    cr_expect_float_eq(d.lookahead_ms, 312 * 1000.0 / 48000, 1e-9, "Opus lookahead %.3f ms", d.lookahead_ms);
    cr_expect_float_eq(d.echo_ms, 10, 1e-9, "the preprocessor holds one 10 ms block: %.3f ms", d.echo_ms);
    cr_expect_float_eq(d.send_resampler_ms, 0, 1e-9);
    cr_expect_float_eq(d.recv_resampler_ms, 0, 1e-9);
    cr_expect_float_eq(d.jitter_min_ms, 0, 1e-9);
    cr_expect_float_eq(d.floor_ms, sum(&d), 1e-9);
    cr_expect_float_eq(d.floor_ms, 2.0 * f + 10 + 6.5, 1e-9);
    cr_assert_eq(parley_call_hangup(p.a), 0);
    cr_expect_eq(parley_call_hangup(p.b), 0);
    cr_expect_eq(parley__call_pipeline_delays(p.a, &d), PARLEY_ESTATE, "hung up");
    pair_free(&p);
  }
}

Test(latency, no_preprocessor_and_resamplers_at_16k) {
  pair p;
  pair_new(&p, 20, 16000, false);
  start_pair(p.a, p.b);
  parley__pipeline_delays d;
  cr_assert_eq(parley__call_pipeline_delays(p.b, &d), 0);
  cr_expect_eq(d.device_rate_hz, 16000);
  /* No AEC, NS or AGC, but the send chain's VAD still runs the preprocessor: one 10 ms block. */
  cr_expect_float_eq(d.echo_ms, 10, 1e-9, "preprocessor (VAD) %.3f ms", d.echo_ms);
  cr_expect_gt(d.send_resampler_ms, 0.0, "16 -> 48 kHz filter delay");
  cr_expect_gt(d.recv_resampler_ms, 0.0, "48 -> 16 kHz filter delay");
  cr_expect_lt(d.send_resampler_ms, 5.0);
  cr_expect_lt(d.recv_resampler_ms, 5.0);
  cr_expect_float_eq(d.period_ms, 20, 1e-9);
  cr_expect_float_eq(d.floor_ms, sum(&d), 1e-9);
  cr_expect_eq(parley__call_pipeline_delays(NULL, &d), PARLEY_EINVAL);
  cr_expect_eq(parley__call_pipeline_delays(p.b, NULL), PARLEY_EINVAL);
  pair_free(&p);
}
