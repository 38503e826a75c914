/* nscall.c: two engines in two network namespaces with a delayed signalling relay (see nscall.h).
 * Owns the namespaces (ip netns), the engines, calls and the message queue. The app thread runs
 * create, pump, move and free; the listeners run on the engines' dispatch threads and only queue. */
#define _GNU_SOURCE
#include "sim/nscall.h"

#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t parley__nscall_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void parley__nscall_config_init(parley__nscall_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->relay_candidates = true;
}

/* Runs a shell command line built from fmt; true when it exited 0. */
static bool run(const char *fmt, ...) {
  char cmd[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return system(cmd) == 0;
}

static void queue(parley__nscall *h, int to, int type, const char *text, int64_t delay_us) {
  if (h->nmsgs >= PARLEY__NSCALL_MAX_MSGS) {
    h->dropped_msgs++;
    return;
  }
  parley__nscall_msg *m = &h->msgs[h->nmsgs++];
  m->due_us = parley__nscall_now_us() + delay_us;
  m->to = to;
  m->type = type;
  snprintf(m->text, sizeof m->text, "%s", text);
}

static void on_event(const parley_event *ev, void *user) {
  parley__nscall_side *s = user;
  parley__nscall *h = s->h;
  pthread_mutex_lock(&h->lock);
  if (s->nkinds < PARLEY__NSCALL_MAX_EVENTS) s->kinds[s->nkinds++] = ev->kind;
  int64_t delay = (int64_t)h->cfg.signaling_delay_ms * 1000;
  if (ev->kind == PARLEY_EVENT_INTERRUPTED) snprintf(s->interrupted_msg, sizeof s->interrupted_msg, "%s", ev->message);
  if (ev->kind == PARLEY_EVENT_RESUMED) snprintf(s->resumed_msg, sizeof s->resumed_msg, "%s", ev->message);
  if (ev->kind == PARLEY_EVENT_LOCAL_CANDIDATE && h->cfg.relay_candidates) {
    char line[300];
    snprintf(line, sizeof line, "%s%s", strcmp(ev->candidate, "end-of-candidates") == 0 ? "a=" : "", ev->candidate);
    queue(h, 1 - s->index, 0, line, delay);
  }
  if (ev->kind == PARLEY_EVENT_NEGOTIATION_NEEDED) {
    s->negotiations++;
    queue(h, s->index, 3, "", 0);
  }
  pthread_mutex_unlock(&h->lock);
}

/* Offer from side i (NEGOTIATION_NEEDED); false when it is not stable yet (try again later). */
static bool offer_from(parley__nscall *h, int i) {
  static char sdp[8192];
  parley_call *c = h->side[i].call;
  if (h->offers_in_flight > 0) return false;
  if (parley_call_create_offer(c, sdp, sizeof sdp) < 0) return false;
  if (parley_call_set_local_description(c, sdp) != 0) return false;
  pthread_mutex_lock(&h->lock);
  h->offers_in_flight++;
  queue(h, 1 - i, 1, sdp, (int64_t)h->cfg.signaling_delay_ms * 1000);
  pthread_mutex_unlock(&h->lock);
  return true;
}

static void answer_at(parley__nscall *h, int i, const char *offer) {
  static char sdp[8192];
  parley_call *c = h->side[i].call;
  if (parley_call_set_remote_description(c, PARLEY_SDP_OFFER, offer, NULL) != 0 ||
      parley_call_create_answer(c, sdp, sizeof sdp) < 0 || parley_call_set_local_description(c, sdp) != 0) {
    h->offers_in_flight--; /* the exchange ended here */
    return;
  }
  pthread_mutex_lock(&h->lock);
  queue(h, 1 - i, 2, sdp, (int64_t)h->cfg.signaling_delay_ms * 1000);
  pthread_mutex_unlock(&h->lock);
}

void parley__nscall_pump(parley__nscall *h) {
  static parley__nscall_msg due[8];
  for (int round = 0; round < 8; round++) {
    int n = 0;
    int64_t now = parley__nscall_now_us();
    pthread_mutex_lock(&h->lock);
    for (int i = 0; i < h->nmsgs && n < 8;) {
      if (h->msgs[i].due_us <= now) {
        due[n++] = h->msgs[i];
        memmove(&h->msgs[i], &h->msgs[i + 1], (size_t)(h->nmsgs - i - 1) * sizeof h->msgs[0]);
        h->nmsgs--;
      } else {
        i++;
      }
    }
    pthread_mutex_unlock(&h->lock);
    if (n == 0) return;
    for (int k = 0; k < n; k++) {
      parley__nscall_msg *m = &due[k];
      parley_call *c = h->side[m->to].call;
      if (m->type == 0) (void)parley_call_add_remote_candidate(c, m->text);
      else if (m->type == 1) answer_at(h, m->to, m->text);
      else if (m->type == 2) {
        (void)parley_call_set_remote_description(c, PARLEY_SDP_ANSWER, m->text, NULL);
        h->offers_in_flight--;
      }
      else if (!offer_from(h, m->to)) { /* an exchange in flight: after it */
        pthread_mutex_lock(&h->lock);
        queue(h, m->to, 3, "", 20000);
        pthread_mutex_unlock(&h->lock);
      }
    }
  }
}

static int make_engine(parley__nscall *h, int i, const char *input, const char *output) {
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.audio = PARLEY_AUDIO_FILE;
  cfg.input_file = input;
  cfg.output_file = output;
  cfg.input_file_end = PARLEY_INPUT_END_LOOP;
  cfg.ipv6 = false;
  cfg.echo_cancellation = false; /* files: no echo; the recordings stay comparable to the fixtures */
  cfg.noise_suppression = false;
  parley__nscall_side *s = &h->side[i];
  s->h = h;
  s->index = i;
  int r = parley_engine_new(&cfg, &s->eng);
  if (r) return r;
  r = parley_call_new(s->eng, &s->call);
  if (r) return r;
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
    s->listener[k] = parley_call_on(s->call, (parley_event_kind)k, on_event, s);
  return 0;
}

int parley__nscall_create(parley__nscall *h, const parley__nscall_config *cfg, const char **why) {
  static const char *dummy;
  if (!why) why = &dummy;
  memset(h, 0, sizeof *h);
  h->cfg = *cfg;
  h->ns_fd[0] = h->ns_fd[1] = h->home_fd = -1;
  pthread_mutex_init(&h->lock, NULL);
  h->msgs = calloc(PARLEY__NSCALL_MAX_MSGS, sizeof *h->msgs);
  if (!h->msgs) return PARLEY_ENOMEM;
  *why = "needs root for network namespaces";
  if (geteuid() != 0) return PARLEY_ENOTSUP;
  for (int i = 0; i < 2; i++) {
    snprintf(h->ns[i], sizeof h->ns[i], "parley-%d-%c", (int)getpid(), 'a' + i);
    (void)run("ip netns del %s 2>/dev/null", h->ns[i]);
    *why = "ip netns add failed: no network namespaces";
    if (!run("ip netns add %s", h->ns[i])) return PARLEY_ENOTSUP;
  }
  *why = "no veth links between the namespaces";
  if (!run("ip -n %s link add a0 type veth peer name b0 netns %s", h->ns[0], h->ns[1]) ||
      !run("ip -n %s link add a1 type veth peer name b1 netns %s", h->ns[0], h->ns[1]))
    return PARLEY_ENOTSUP;
  *why = "address set-up failed";
  if (!run("ip -n %s link set lo up && ip -n %s link set a0 up && ip -n %s link set a1 up && "
           "ip -n %s addr add 10.66.0.1/24 dev a0",
           h->ns[0], h->ns[0], h->ns[0], h->ns[0]) ||
      !run("ip -n %s link set lo up && ip -n %s link set b0 up && ip -n %s link set b1 up && "
           "ip -n %s addr add 10.66.0.2/24 dev b0",
           h->ns[1], h->ns[1], h->ns[1], h->ns[1]) ||
      (!cfg->b_moves_too && !run("ip -n %s addr add 10.66.1.2/24 dev b1", h->ns[1])))
    return PARLEY_ENETWORK;
  *why = "cannot open the namespaces";
  h->home_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  for (int i = 0; i < 2; i++) {
    char path[96];
    snprintf(path, sizeof path, "/run/netns/%s", h->ns[i]);
    h->ns_fd[i] = open(path, O_RDONLY | O_CLOEXEC);
  }
  if (h->home_fd < 0 || h->ns_fd[0] < 0 || h->ns_fd[1] < 0) return PARLEY_ENOTSUP;

  /* Each engine is made, and opens its sockets, with this thread inside its namespace. */
  static char offer[8192], answer[8192];
  int r;
  *why = "engine A";
  if (setns(h->ns_fd[0], CLONE_NEWNET) != 0) return PARLEY_ENOTSUP;
  r = make_engine(h, 0, cfg->input_a, cfg->output_a);
  if (!r) r = parley_call_create_offer(h->side[0].call, offer, sizeof offer) < 0 ? PARLEY_ESTATE : 0;
  if (!r) r = parley_call_set_local_description(h->side[0].call, offer);
  if (r) goto home;
  *why = "engine B";
  if (setns(h->ns_fd[1], CLONE_NEWNET) != 0) {
    r = PARLEY_ENOTSUP;
    goto home;
  }
  r = make_engine(h, 1, cfg->input_b, cfg->output_b);
  if (!r) r = parley_call_set_remote_description(h->side[1].call, PARLEY_SDP_OFFER, offer, NULL);
  if (!r) r = parley_call_create_answer(h->side[1].call, answer, sizeof answer) < 0 ? PARLEY_ESTATE : 0;
  if (!r) r = parley_call_set_local_description(h->side[1].call, answer);
home:
  if (setns(h->home_fd, CLONE_NEWNET) != 0 && !r) r = PARLEY_ENOTSUP;
  if (r) return r;
  *why = "negotiation";
  r = parley_call_set_remote_description(h->side[0].call, PARLEY_SDP_ANSWER, answer, NULL);
  if (!r) r = parley_call_start(h->side[0].call);
  if (!r) r = parley_call_start(h->side[1].call);
  if (!r) *why = NULL;
  return r;
}

int parley__nscall_move(parley__nscall *h, int side, int from) {
  char dev = side == 0 ? 'a' : 'b';
  int to = 1 - from;
  /* Deleted first, then added: the order a phone leaving Wi-Fi sees (break before make). */
  if (!run("ip -n %s addr del 10.66.%d.%d/24 dev %c%d", h->ns[side], from, side + 1, dev, from)) return -1;
  return run("ip -n %s addr add 10.66.%d.%d/24 dev %c%d", h->ns[side], to, side + 1, dev, to) ? 0 : -1;
}

int parley__nscall_count(parley__nscall *h, int side, parley_event_kind kind) {
  pthread_mutex_lock(&h->lock);
  int n = 0;
  for (int i = 0; i < h->side[side].nkinds; i++) n += h->side[side].kinds[i] == kind;
  pthread_mutex_unlock(&h->lock);
  return n;
}

int parley__nscall_outages(parley__nscall *h, int side, parley_event_kind *out, int max) {
  pthread_mutex_lock(&h->lock);
  int n = 0;
  for (int i = 0; i < h->side[side].nkinds; i++) {
    parley_event_kind k = h->side[side].kinds[i];
    if ((k == PARLEY_EVENT_INTERRUPTED || k == PARLEY_EVENT_RESUMED) && n < max) out[n++] = k;
  }
  pthread_mutex_unlock(&h->lock);
  return n;
}

static void side_stats(parley__nscall *h, int side, parley_call_stats *st) {
  if (parley_call_get_stats(h->side[side].call, st) != 0) memset(st, 0, sizeof *st);
}

void parley__nscall_mark_take(parley__nscall *h, parley__nscall_mark *m) {
  memset(m, 0, sizeof *m);
  for (int i = 0; i < 2; i++) {
    parley_call_stats st;
    side_stats(h, i, &st);
    m->pairs[i] = st.ice_pairs_selected;
  }
}

bool parley__nscall_media_back(parley__nscall *h, parley__nscall_mark *m) {
  bool back = true;
  for (int i = 0; i < 2; i++) {
    parley_call_stats st;
    side_stats(h, i, &st);
    if (!m->new_pair[i] && st.ice_pairs_selected > m->pairs[i]) {
      m->new_pair[i] = true;
      m->received[i] = st.packets_received;
      back = false;
      continue;
    }
    back = back && m->new_pair[i] && st.packets_received > m->received[i];
  }
  return back;
}

void parley__nscall_free(parley__nscall *h) {
  for (int i = 0; i < 2; i++) {
    parley__nscall_side *s = &h->side[i];
    if (s->call) {
      (void)parley_call_hangup(s->call);
      for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++)
        if (s->listener[k] > 0) (void)parley_call_off(s->call, s->listener[k]);
      (void)parley_call_free(s->call);
    }
    parley_engine_free(s->eng);
    s->call = NULL;
    s->eng = NULL;
  }
  for (int i = 0; i < 2; i++) {
    if (h->ns_fd[i] >= 0) close(h->ns_fd[i]);
    if (h->ns[i][0]) (void)run("ip netns del %s 2>/dev/null", h->ns[i]);
  }
  if (h->home_fd >= 0) close(h->home_fd);
  free(h->msgs);
  h->msgs = NULL;
  pthread_mutex_destroy(&h->lock);
}
