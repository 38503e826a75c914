/* simcall.c: a simulated two-party call over simnet (see simcall.h). Owns the network, its impairment
 * adapter, both agents, both monitors and their glue, and the two media senders. One thread; not
 * real-time code. The event loop jumps from one due time to the next (network delivery, agent timer,
 * monitor timer, media packet), so an hour of call costs only the work the call really does. */
#include "sim/simcall.h"

#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "parley/parley.h"
#include "transport/ice_liveness.h"
#include "transport/netaddr.h"
#include "transport/rtp.h"
#include "sim/simnet.h"
#include "sim/simnet_impair.h"

#define MS 1000
#define DTX_PERIOD_US (400 * MS)
#define TALK_PERIOD_US (20 * MS)
#define DTX_PAYLOAD 3
#define TALK_PAYLOAD 80 /* 32 kbit/s Opus in 20 ms */
#define OPUS_PT 111
#define EVENT_SLOTS 64

typedef struct side {
  parley__simcall *call;
  int index;
  parley__netaddr addr;
  struct sockaddr_storage sa;
  parley__ice_agent *ice;
  parley__liveness *mon;
  parley__ice_liveness glue;
  parley__event slots[EVENT_SLOTS];
  parley__event_queue q;
  /* The media sender. */
  parley__rng rng;
  uint32_t ssrc;
  uint16_t seq;
  bool talking;
  int64_t mode_end_us, next_media_us, media_epoch_us;
  bool sending;
  int endpoint; /* its simnet endpoint id */
  bool dead;    /* killed: no endpoint, no timers, no media */
} side;

struct parley__simcall {
  parley__simcall_config cfg;
  parley__simnet *net;
  parley__simnet_impair *imp;
  side s[2];
  int64_t now_us;
  int error;
  parley__simcall_stats stats;
};

static void note(parley__simcall *c, int rc) {
  if (rc < 0 && !c->error) c->error = rc;
}

/* Hands queued monitor events to the caller. */
static void drain(side *sd) {
  parley__event ev;
  while (parley__event_queue_pop(&sd->q, &ev) == 0)
    if (sd->call->cfg.on_event) sd->call->cfg.on_event(sd->call->cfg.ctx, sd->index, &ev);
}

static void ice_send(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  side *sd = ctx;
  struct sockaddr_storage to;
  (void)local; /* one socket per side */
  if (parley__netaddr_to_sockaddr(dst, &to) <= 0) return;
  sd->call->stats.datagrams++;
  note(sd->call, parley__simnet_send(sd->call->net, (struct sockaddr *)&sd->sa, (struct sockaddr *)&to, buf,
                                     len, sd->call->now_us));
}

static void ice_event(void *ctx, const parley__ice_event *ev) {
  side *sd = ctx;
  note(sd->call, parley__ice_liveness_on_ice_event(&sd->glue, ev));
  if (ev->kind == PARLEY__ICE_EV_SELECTED_PAIR && !sd->sending && !sd->call->cfg.mute[sd->index]) {
    sd->sending = true; /* media starts on the first selected pair, at a random DTX phase */
    sd->media_epoch_us = ev->now_us;
    sd->next_media_us = ev->now_us + (int64_t)parley__rng_below(&sd->rng, DTX_PERIOD_US / MS) * MS;
  }
}

static void net_recv(void *ctx, parley__simnet *net, const struct sockaddr *from, const struct sockaddr *to,
                     const uint8_t *data, size_t len, int64_t now_us) {
  (void)net, (void)to;
  side *sd = ctx;
  parley__simcall *c = sd->call;
  parley__netaddr src;
  if (parley__netaddr_from_sockaddr(&src, from) != 0) return;
  c->now_us = now_us; /* sends made from inside the agent carry the delivery time */
  int rc = parley__ice_receive(sd->ice, 0, &src, data, len, now_us);
  if (rc == 0 && parley__ice_accept_media(sd->ice, 0, &src)) {
    parley__rtp_view v;
    if (parley__rtp_parse(data, len, &v) == 0) {
      c->stats.rtp_accepted[sd->index]++;
      note(c, parley__liveness_on_rtp(sd->mon, now_us, v.hdr.ssrc, true));
    }
  }
  note(c, rc);
  drain(sd);
}

static void net_error(void *ctx, parley__simnet *net, const struct sockaddr *dest, int errno_value,
                      int64_t now_us) {
  (void)net;
  side *sd = ctx;
  parley__netaddr d;
  if (parley__netaddr_from_sockaddr(&d, dest) != 0) return;
  sd->call->now_us = now_us;
  note(sd->call, parley__ice_liveness_on_socket_error(&sd->glue, 0, &d, errno_value, now_us));
  drain(sd);
}

static int64_t uniform_us(parley__rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(parley__rng_uniform(r) * (double)(hi - lo));
}

/* One RTP packet on the selected pair, then the next send time (talk/silence switching). */
static void send_media(side *sd, int64_t now_us) {
  parley__simcall *c = sd->call;
  int local;
  parley__netaddr remote;
  if (parley__ice_selected_pair(sd->ice, &local, &remote) == 0) {
    static const uint8_t payload[TALK_PAYLOAD]; /* the bytes do not matter here */
    parley__rtp_header h = {.payload_type = OPUS_PT, .seq = sd->seq++, .ssrc = sd->ssrc,
                            .timestamp = (uint32_t)((now_us - sd->media_epoch_us) * 48 / 1000)};
    uint8_t pkt[PARLEY__RTP_FIXED_HEADER_LEN + TALK_PAYLOAD];
    int n = parley__rtp_build(&h, payload, sd->talking ? TALK_PAYLOAD : DTX_PAYLOAD, 0, pkt, sizeof pkt);
    if (n > 0) {
      c->stats.rtp_sent[sd->index]++;
      ice_send(sd, local, &remote, pkt, (size_t)n);
    } else {
      note(c, n);
    }
  }
  if (c->cfg.talkspurts && now_us >= sd->mode_end_us) {
    sd->talking = !sd->talking;
    sd->mode_end_us = now_us + (sd->talking ? uniform_us(&sd->rng, 500 * MS, 2500 * MS)
                                            : uniform_us(&sd->rng, 1000 * MS, 6000 * MS));
  }
  sd->next_media_us = now_us + (sd->talking ? TALK_PERIOD_US : DTX_PERIOD_US);
}

static int side_init(parley__simcall *c, int i) {
  side *sd = &c->s[i];
  sd->call = c;
  sd->index = i;
  int rc = parley__netaddr_from_ip(&sd->addr, i == 0 ? "10.0.0.1" : "10.0.0.2", (uint16_t)(i == 0 ? 5000 : 6000));
  if (rc == 0 && parley__netaddr_to_sockaddr(&sd->addr, &sd->sa) <= 0) rc = PARLEY_EINVAL;
  if (rc) return rc;
  parley__ice_config ic = {.role = i == 0 ? PARLEY__ICE_CONTROLLING : PARLEY__ICE_CONTROLLED,
                           .tie_breaker = i == 0 ? 2 : 1, .send = ice_send, .on_event = ice_event, .ctx = sd};
  sd->ice = parley__ice_new(&ic, &rc);
  if (!sd->ice) return rc;
  if (parley__ice_add_local(sd->ice, &sd->addr) != 0) return PARLEY_EINVAL;
  parley__event_queue_init(&sd->q, sd->slots, EVENT_SLOTS);
  parley__liveness_config lc;
  if (c->cfg.has_live) lc = c->cfg.live;
  else parley__liveness_config_init(&lc);
  lc.seed = c->cfg.seed * 2 + (uint64_t)i + 1;
  sd->mon = parley__liveness_new(&lc, &sd->q, &rc);
  if (!sd->mon) return rc;
  parley__ice_liveness_init(&sd->glue, sd->ice, sd->mon);
  parley__rng_seed(&sd->rng, c->cfg.seed ^ (0x51de0000u + (uint64_t)i));
  sd->ssrc = 0x5eed0000u + (uint32_t)i;
  sd->seq = (uint16_t)parley__rng_below(&sd->rng, 65536);
  sd->next_media_us = INT64_MAX;
  rc = parley__simnet_add_endpoint(c->net, (struct sockaddr *)&sd->sa, net_recv, net_error, sd);
  sd->endpoint = rc;
  return rc < 0 ? rc : 0;
}

/* Signalling, instantly: from's credentials, candidates and end-of-candidates reach `to`. */
static int signal_to(parley__simcall *c, side *from, side *to) {
  const char *u, *pw;
  parley__ice_local_credentials(from->ice, &u, &pw);
  int rc = parley__ice_set_remote_credentials(to->ice, u, pw);
  parley__ice_candidate cand[PARLEY__ICE_MAX_LOCAL];
  int n = parley__ice_local_candidates(from->ice, cand, PARLEY__ICE_MAX_LOCAL);
  for (int i = 0; rc == 0 && i < n && i < PARLEY__ICE_MAX_LOCAL; i++)
    if (parley__ice_add_remote_candidate(to->ice, &cand[i], c->now_us) < 0) rc = PARLEY_EINVAL;
  if (rc == 0) parley__ice_remote_end_of_candidates(to->ice, c->now_us);
  return rc;
}

parley__simcall *parley__simcall_new(const parley__simcall_config *cfg, int *err) {
  int rc = cfg ? 0 : PARLEY_EINVAL;
  parley__simcall *c = rc ? NULL : calloc(1, sizeof *c);
  if (!rc && !c) rc = PARLEY_ENOMEM;
  if (!rc) {
    c->cfg = *cfg;
    c->net = parley__simnet_new(4, 8192, 1500, cfg->seed ^ 0x9e3779b97f4a7c15ull, &rc);
  }
  for (int i = 0; !rc && i < 2; i++) rc = side_init(c, i);
  if (!rc) {
    c->imp = parley__simnet_impair_new((struct sockaddr *)&c->s[0].sa, (struct sockaddr *)&c->s[1].sa,
                                       &cfg->a2b, &cfg->b2a, cfg->seed * 0x2545f4914f6cdd1dull + 7, &rc);
    if (c->imp) parley__simnet_impair_attach(c->imp, c->net);
  }
  for (int i = 0; !rc && i < 2; i++) rc = parley__ice_start(c->s[i].ice, 0);
  if (!rc) rc = signal_to(c, &c->s[0], &c->s[1]);
  if (!rc) rc = signal_to(c, &c->s[1], &c->s[0]);
  if (rc) {
    parley__simcall_free(c);
    if (err) *err = rc;
    return NULL;
  }
  for (int i = 0; i < 2; i++) drain(&c->s[i]);
  if (err) *err = 0;
  return c;
}

void parley__simcall_free(parley__simcall *c) {
  if (!c) return;
  parley__simnet_free(c->net); /* first: it borrows the impairment adapter */
  parley__simnet_impair_free(c->imp);
  for (int i = 0; i < 2; i++) {
    parley__liveness_free(c->s[i].mon);
    parley__ice_free(c->s[i].ice);
  }
  free(c);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t next_due(const parley__simcall *c) {
  int64_t t = parley__simnet_next_delivery_us(c->net);
  for (int i = 0; i < 2; i++) {
    if (c->s[i].dead) continue;
    t = min64(t, parley__ice_liveness_next_deadline_us(&c->s[i].glue));
    t = min64(t, c->s[i].next_media_us);
  }
  return t;
}

int parley__simcall_run_until(parley__simcall *c, int64_t t_end_us) {
  if (!c || t_end_us < c->now_us) return PARLEY_EINVAL;
  int64_t last = INT64_MIN;
  int same = 0;
  for (;;) {
    if (c->error) return c->error;
    int64_t t = next_due(c);
    if (t > t_end_us) break;
    if (t < c->now_us) t = c->now_us;
    if (t == last && ++same > 10000) return PARLEY_ESTATE; /* a timer that never advances */
    if (t != last) same = 0;
    last = t;
    c->now_us = t;
    for (int i = 0; i < 2; i++)
      if (c->s[i].next_media_us <= t) send_media(&c->s[i], t);
    note(c, parley__simnet_deliver_until(c->net, t));
    c->now_us = t;
    for (int i = 0; i < 2; i++) {
      side *sd = &c->s[i];
      if (sd->dead) continue;
      if (parley__ice_next_deadline_us(sd->ice) <= t) parley__ice_tick(sd->ice, t);
      if (parley__liveness_next_deadline_us(sd->mon) <= t) note(c, parley__ice_liveness_tick(&sd->glue, t));
      drain(sd);
    }
  }
  c->now_us = t_end_us;
  return c->error;
}

int64_t parley__simcall_now_us(const parley__simcall *c) { return c ? c->now_us : 0; }

void parley__simcall_cut(parley__simcall *c) {
  if (c) parley__simnet_cut(c->net);
}

void parley__simcall_restore(parley__simcall *c) {
  if (c) parley__simnet_restore(c->net);
}

int parley__simcall_kill(parley__simcall *c, int which) {
  if (!c || (which != 0 && which != 1)) return PARLEY_EINVAL;
  side *sd = &c->s[which];
  if (sd->dead) return 0;
  sd->dead = true;
  sd->next_media_us = INT64_MAX;
  return parley__simnet_remove_endpoint(c->net, sd->endpoint);
}

int parley__simcall_socket_error(parley__simcall *c, int which, int errno_value) {
  if (!c || (which != 0 && which != 1) || c->s[which].dead) return PARLEY_EINVAL;
  side *sd = &c->s[which];
  int local;
  parley__netaddr remote;
  if (parley__ice_selected_pair(sd->ice, &local, &remote) != 0) return PARLEY_ESTATE;
  int rc = parley__ice_liveness_on_socket_error(&sd->glue, local, &remote, errno_value, c->now_us);
  drain(sd);
  return rc < 0 ? rc : 0;
}

bool parley__simcall_talking(const parley__simcall *c, int which) {
  return c && (which == 0 || which == 1) && c->s[which].talking;
}

parley__ice_agent *parley__simcall_agent(const parley__simcall *c, int which) {
  return c && (which == 0 || which == 1) ? c->s[which].ice : NULL;
}

parley__liveness *parley__simcall_monitor(const parley__simcall *c, int which) {
  return c && (which == 0 || which == 1) ? c->s[which].mon : NULL;
}

void parley__simcall_get_stats(const parley__simcall *c, parley__simcall_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!c) return;
  *out = c->stats;
  for (int i = 0; i < 2; i++) {
    out->probes_sent[i] = c->s[i].glue.probes_sent;
    out->consents_sent[i] = c->s[i].glue.consents_sent;
  }
}
