/* fuzz_ice.c: libFuzzer target for the ICE agent, driven as a state machine. The input is a program:
 * each step's first byte picks an operation (raw datagram; a request signed with the agent's own
 * password so the authenticated paths are reached; an answer to the agent's latest request, signed
 * with the remote password; a remote candidate; time passing; consent check; restart) and the
 * following bytes feed it. Invariants checked: the agent only ever sends to addresses it was given or
 * learned; media is accepted on the selected pair, and otherwise only from an address the agent was
 * given as a candidate or that sent it an authenticated check (RFC 8445 12.2: any valid pair), never
 * before a pair is selected.
 * The agent's sources are compiled into this translation unit so they are instrumented. */
#include "transport/ice.c"
#include "transport/ice_checklist.c"
#include "transport/ice_checks.c"
#include "transport/ice_msg.c"
#include "transport/netaddr.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct harness {
  uint8_t last_txid[12];
  bool have_txid;
  parley__netaddr last_dst;
  int last_local;
  size_t sends;
  parley__netaddr known[80]; /* remote candidates given, and sources of correctly signed checks */
  int nknown;
} harness;

static void know(harness *h, const parley__netaddr *a) {
  if (h->nknown < (int)(sizeof h->known / sizeof h->known[0])) h->known[h->nknown++] = *a;
}

static bool known(const harness *h, const parley__netaddr *a) {
  for (int i = 0; i < h->nknown; i++)
    if (parley__netaddr_equal(&h->known[i], a)) return true;
  return false;
}

static void on_send(void *ctx, int local, const parley__netaddr *dst, const uint8_t *buf, size_t len) {
  harness *h = ctx;
  if (local < 0 || local >= 2 || len < 20 || len > PARLEY__ICE_MSG_MAX) abort();
  parley__ice_msg m;
  if (parley__ice_msg_parse(buf, len, &m) != 0) abort(); /* we only ever send valid STUN */
  if (m.cls == PARLEY__ICE_MSG_REQUEST) {
    memcpy(h->last_txid, m.txid, 12);
    h->have_txid = true;
    h->last_dst = *dst;
    h->last_local = local;
  }
  h->sends++;
}

static const char *const remote_ufrag = "rfrag";
static const char *const remote_pwd = "remote-password-0123456789";

static size_t take(const uint8_t **d, size_t *n, void *out, size_t want) {
  size_t k = *n < want ? *n : want;
  memset(out, 0, want);
  memcpy(out, *d, k);
  *d += k;
  *n -= k;
  return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  harness h;
  memset(&h, 0, sizeof h);
  parley__ice_config cfg = {.role = size && (data[0] & 1) ? PARLEY__ICE_CONTROLLING : PARLEY__ICE_CONTROLLED,
                            .tie_breaker = 1000, .send = on_send, .ctx = &h};
  parley__ice_agent *a = parley__ice_new(&cfg, NULL);
  if (!a) return 0;
  parley__netaddr l0, l1, peer;
  parley__netaddr_from_ip(&l0, "10.0.0.1", 4000);
  parley__netaddr_from_ip(&l1, "2001:db8::1", 4000);
  parley__netaddr_from_ip(&peer, "10.0.0.2", 5000);
  parley__ice_add_local(a, &l0);
  parley__ice_add_local(a, &l1);
  int64_t now = 1000;
  parley__ice_start(a, now);
  parley__ice_set_remote_credentials(a, remote_ufrag, remote_pwd);
  parley__ice_candidate c = {.foundation = "x", .component = 1, .priority = 2130706431u, .addr = peer, .local = -1};
  parley__ice_add_remote_candidate(a, &c, now);
  know(&h, &peer);

  for (int steps = 0; size > 0 && steps < 64; steps++) {
    uint8_t op = data[0];
    data++, size--;
    switch (op % 8) {
    case 0: { /* raw datagram, length from the next byte */
      uint8_t len = 0;
      take(&data, &size, &len, 1);
      size_t k = len < size ? len : size;
      parley__ice_receive(a, 0, &peer, data, k, now);
      data += k, size -= k;
      break;
    }
    case 1: { /* an authenticated request from a fuzzed source port */
      struct { uint8_t flags; uint16_t port; uint32_t prio; uint64_t tb; } f;
      take(&data, &size, &f, sizeof f);
      parley__ice_msg m = {.cls = PARLEY__ICE_MSG_REQUEST, .method = 1, .has_username = true,
                           .has_priority = (f.flags & 1) != 0, .priority = f.prio,
                           .use_candidate = (f.flags & 2) != 0, .has_controlling = (f.flags & 4) != 0,
                           .has_controlled = (f.flags & 8) != 0, .tie_breaker = f.tb};
      memset(m.txid, f.flags, 12);
      const char *u, *p;
      parley__ice_local_credentials(a, &u, &p);
      snprintf(m.username, sizeof m.username, "%s:%s", (f.flags & 16) ? "bogus" : u, remote_ufrag);
      uint8_t buf[PARLEY__ICE_MSG_MAX];
      int n = parley__ice_msg_build(&m, (f.flags & 32) ? remote_pwd : p, buf, sizeof buf);
      parley__netaddr src = peer;
      if (f.flags & 64) src.port = f.port ? f.port : 1;
      if (!(f.flags & (16 | 32))) know(&h, &src);
      if (n > 0) parley__ice_receive(a, 0, &src, buf, (size_t)n, now);
      break;
    }
    case 2: { /* an answer to the latest request */
      struct { uint8_t flags; uint16_t code; } f;
      take(&data, &size, &f, sizeof f);
      if (!h.have_txid) break;
      parley__ice_msg m = {.cls = (f.flags & 1) ? PARLEY__ICE_MSG_ERROR : PARLEY__ICE_MSG_SUCCESS, .method = 1,
                           .error_code = (f.flags & 1) ? 300 + f.code % 400 : 0, .has_mapped = !(f.flags & 1),
                           .mapped = h.last_dst};
      memcpy(m.txid, h.last_txid, 12);
      uint8_t buf[PARLEY__ICE_MSG_MAX];
      int n = parley__ice_msg_build(&m, (f.flags & 2) ? "wrong-password-xxxxxxxxx" : remote_pwd, buf, sizeof buf);
      parley__netaddr src = (f.flags & 4) ? peer : h.last_dst;
      if (n > 0) parley__ice_receive(a, (f.flags & 8) ? 1 - h.last_local : h.last_local, &src, buf, (size_t)n, now);
      break;
    }
    case 3: { /* time passes */
      uint16_t dt = 0;
      take(&data, &size, &dt, 2);
      now += (int64_t)dt * 100;
      int64_t d = parley__ice_next_deadline_us(a);
      if (d <= now) parley__ice_tick(a, now);
      break;
    }
    case 4: { /* another remote candidate */
      struct { uint8_t last; uint16_t port; uint32_t prio; uint8_t type; } f;
      take(&data, &size, &f, sizeof f);
      parley__ice_candidate r = c;
      r.addr.ip[3] = f.last;
      r.addr.port = f.port;
      r.priority = f.prio;
      r.type = (parley__ice_cand_type)(f.type % 4);
      parley__ice_add_remote_candidate(a, &r, now);
      know(&h, &r.addr);
      break;
    }
    case 5: parley__ice_send_consent_check(a, now); break;
    case 6:
      parley__ice_restart(a, now);
      parley__ice_set_remote_credentials(a, remote_ufrag, remote_pwd);
      parley__ice_add_remote_candidate(a, &c, now);
      break;
    default: parley__ice_remote_end_of_candidates(a, now); break;
    }
    /* The media gate: open for the selected pair; for any other source only if the agent knows it. */
    int sl;
    parley__netaddr sr;
    if (parley__ice_selected_pair(a, &sl, &sr) == 0) {
      if (!parley__ice_accept_media(a, sl, &sr)) abort();
      parley__netaddr other = sr;
      other.port ^= 1;
      if (parley__ice_accept_media(a, sl, &other) && !known(&h, &other)) abort();
      parley__netaddr stranger = sr;
      stranger.port = 9;
      stranger.ip[0] ^= 0x80;
      if (parley__ice_accept_media(a, sl, &stranger) && !known(&h, &stranger)) abort();
    } else if (parley__ice_accept_media(a, 0, &peer)) {
      abort();
    }
  }
  parley__ice_free(a);
  return 0;
}
