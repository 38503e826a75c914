/* janus.c: the Janus API client (see janus.h): the requests (info, create, attach, messages, leave) and
 * their replies, over one of two transports chosen by the URL's scheme. http(s)://: owns the session's
 * URLs, its curl multi handle and the poll thread, which owns the long poll and the keepalives and
 * calls the event function; each request is its own blocking curl easy handle. ws://: the connection
 * of transport/janus_ws.c, whose reader thread calls the event function and sends the keepalives;
 * requests carry session_id / handle_id and wait for the answer with their transaction.
 * open/join/set_muted/close run on app threads (each request PARLEY__JANUS_REQUEST_MS at most);
 * nothing here is real-time safe. */
#define _GNU_SOURCE
#include "transport/janus.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "parley/parley.h"
#include "transport/janus_ws.h"

#define LONG_POLL_MS 40000     /* Janus answers a long poll after 30 s at most (an empty keepalive) */
#define REPLY_MAX (4u << 20)   /* bytes of one reply kept */
#define RETRY_MS 250           /* after a failed long poll */

struct parley__janus {
  char *url, *session_url, *handle_url, *poll_url;
  uint64_t session, handle;
  _Atomic uint64_t self;
  int keepalive_ms;
  long request_ms; /* each request's bound: PARLEY__JANUS_REQUEST_MS, PARLEY__JANUS_CLOSE_MS in close */
  parley__janus_fn fn;
  void *user;
  CURLM *multi;         /* http: the poll thread's */
  parley__janus_ws *ws; /* ws: the connection (no multi, no URLs but url) */
  pthread_t thread;
  bool started;
  atomic_bool stop;
  atomic_uint tx;
};

typedef struct reply {
  char *p;
  size_t n;
} reply;

static size_t on_data(char *d, size_t size, size_t nmemb, void *u) {
  reply *r = u;
  size_t add = size * nmemb;
  if (r->n + add + 1 > REPLY_MAX) return 0; /* curl fails the transfer */
  char *p = realloc(r->p, r->n + add + 1);
  if (!p) return 0;
  memcpy(p + r->n, d, add);
  r->n += add;
  p[r->n] = '\0';
  r->p = p;
  return add;
}

/* An easy handle for url: a POST of body (copied) or, body NULL, a GET; the reply goes to r. */
static CURL *easy(const char *url, const char *body, reply *r, long timeout_ms) {
  CURL *c = curl_easy_init();
  if (!c) return NULL;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < PARLEY__JANUS_REQUEST_MS ? timeout_ms : (long)PARLEY__JANUS_REQUEST_MS);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  if (body) curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body);
  return c;
}

static void say(char *err, size_t cap, const char *what, const char *why) {
  if (cap) snprintf(err, cap, "Janus %s: %s", what, why);
}

/* What a request addresses: Janus itself, our session, or our handle. */
typedef enum target { TO_JANUS, TO_SESSION, TO_HANDLE } target;

/* POSTs body to url (NULL: a GET); the reply's JSON in *root. */
static int http_request(parley__janus *j, const char *url, const char *body, json_t **root, char *err, size_t cap) {
  reply r = {0};
  CURL *c = easy(url, body, &r, j->request_ms);
  if (!c) return PARLEY_ENOMEM;
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  *root = rc == CURLE_OK && status == 200 ? json_loadb(r.p ? r.p : "", r.n, 0, NULL) : NULL;
  free(r.p);
  if (*root) return 0;
  say(err, cap, url, rc != CURLE_OK ? curl_easy_strerror(rc) : "no JSON reply");
  return PARLEY_ENETWORK;
}

/* Sends msg (consumed; a transaction is added) to `to` and parses the reply into *out (the caller's to
 * json_decref). A reply "error", or a plugin error, is PARLEY_ENETWORK with its reason in err. */
static int request(parley__janus *j, target to, json_t *msg, json_t **out, char *err, size_t cap) {
  *out = NULL;
  if (!msg) return PARLEY_ENOMEM;
  char tx[32];
  snprintf(tx, sizeof tx, "parley-%u", atomic_fetch_add(&j->tx, 1));
  json_object_set_new(msg, "transaction", json_string(tx));
  json_t *root = NULL;
  int rc;
  if (j->ws) {
    if (to != TO_JANUS) json_object_set_new(msg, "session_id", json_integer((json_int_t)j->session));
    if (to == TO_HANDLE) json_object_set_new(msg, "handle_id", json_integer((json_int_t)j->handle));
    rc = parley__janus_ws_request(j->ws, msg, tx, j->request_ms, &root, err, cap);
  } else {
    char *body = json_dumps(msg, JSON_COMPACT);
    const char *url = to == TO_JANUS ? j->url : to == TO_SESSION ? j->session_url : j->handle_url;
    rc = body ? http_request(j, url, body, &root, err, cap) : PARLEY_ENOMEM;
    free(body);
  }
  json_decref(msg);
  if (rc < 0) return rc;
  const char *what = json_string_value(json_object_get(root, "janus"));
  json_t *data = json_object_get(json_object_get(root, "plugindata"), "data");
  const char *why = NULL;
  if (!what || !strcmp(what, "error"))
    why = json_string_value(json_object_get(json_object_get(root, "error"), "reason"));
  else if (json_object_get(data, "error_code"))
    why = json_string_value(json_object_get(data, "error"));
  if (!what || !strcmp(what, "error") || json_object_get(data, "error_code")) {
    say(err, cap, "refused", why ? why : "error");
    json_decref(root);
    return PARLEY_ENETWORK;
  }
  *out = root;
  return 0;
}

/* request() for a reply whose data.id we want (create, attach). */
static int request_id(parley__janus *j, target to, json_t *msg, uint64_t *id, char *err, size_t cap) {
  json_t *root;
  int rc = request(j, to, msg, &root, err, cap);
  if (rc < 0) return rc;
  json_t *v = json_object_get(json_object_get(root, "data"), "id");
  *id = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
  json_decref(root);
  if (!*id) say(err, cap, "reply", "no id");
  return *id ? 0 : PARLEY_ENETWORK;
}

/* The server's info (GET <url>/info over HTTP, an "info" request over ws) for its session timeout. */
static int get_info(parley__janus *j, char *err, size_t cap) {
  json_t *root = NULL;
  if (j->ws) {
    int rc = request(j, TO_JANUS, json_pack("{s:s}", "janus", "info"), &root, err, cap);
    if (rc < 0) return rc;
  } else {
    char *url;
    if (asprintf(&url, "%s/info", j->url) < 0) return PARLEY_ENOMEM;
    int rc = http_request(j, url, NULL, &root, err, cap);
    free(url);
    if (rc < 0) return rc;
  }
  json_int_t timeout_s = json_integer_value(json_object_get(root, "session-timeout"));
  json_decref(root);
  /* A third of the session timeout leaves two keepalives to lose; no timeout: Janus's usual 25 s. */
  j->keepalive_ms = timeout_s > 0 ? (int)(timeout_s * 1000 / 3) : 25000;
  if (j->keepalive_ms > 25000) j->keepalive_ms = 25000;
  return 0;
}

/* Sees each event before the caller: our own id, and the session's end. */
static void relay(const parley__janus_event *ev, void *user) {
  parley__janus *j = user;
  if (ev->kind == PARLEY__JANUS_JOINED) atomic_store(&j->self, ev->id);
  if (ev->kind == PARLEY__JANUS_SESSION_GONE) atomic_store(&j->stop, true);
  j->fn(ev, j->user);
}

static void gone(parley__janus *j, const char *why) {
  parley__janus_event ev = {.kind = PARLEY__JANUS_SESSION_GONE, .message = why};
  relay(&ev, j);
}

/* The ws connection's messages that answer no request, and its end. */
static void on_ws(const char *text, size_t len, const char *why, void *user) {
  parley__janus *j = user;
  if (atomic_load(&j->stop)) return; /* the session is over: SESSION_GONE was the last event */
  if (text) (void)parley__janus_parse(text, len, j->handle, relay, j);
  else gone(j, why);
}

static int64_t now_ms(void) {
  parley__clock c = parley__clock_monotonic();
  return parley__clock_now(&c) / 1000;
}

/* The poll thread: one long poll always pending (re-armed at once, or after RETRY_MS when it failed),
 * a keepalive every keepalive_ms. Janus unreachable for a whole session timeout ends the session. */
static void *poll_main(void *arg) {
  parley__janus *j = arg;
  reply pr = {0}, kr = {0};
  CURL *poll = NULL, *ka = NULL;
  int64_t t = now_ms(), next_ka = t + j->keepalive_ms, next_poll = t, last_ok = t;
  char ka_body[128];
  while (!atomic_load(&j->stop)) {
    t = now_ms();
    if (!poll && t >= next_poll) {
      pr.n = 0;
      if ((poll = easy(j->poll_url, NULL, &pr, LONG_POLL_MS))) curl_multi_add_handle(j->multi, poll);
    }
    if (!ka && t >= next_ka) {
      snprintf(ka_body, sizeof ka_body, "{\"janus\":\"keepalive\",\"transaction\":\"parley-ka-%u\"}",
               atomic_fetch_add(&j->tx, 1));
      kr.n = 0;
      if ((ka = easy(j->session_url, ka_body, &kr, PARLEY__JANUS_REQUEST_MS))) curl_multi_add_handle(j->multi, ka);
      next_ka = t + j->keepalive_ms;
    }
    int running = 0, left = 0;
    curl_multi_perform(j->multi, &running);
    CURLMsg *m;
    while ((m = curl_multi_info_read(j->multi, &left))) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL *c = m->easy_handle;
      CURLcode rc = m->data.result;
      long status = 0;
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
      curl_multi_remove_handle(j->multi, c);
      curl_easy_cleanup(c);
      if (c == ka) {
        ka = NULL;
        continue;
      }
      poll = NULL;
      if (rc == CURLE_OK && status == 200 && pr.p && parley__janus_parse(pr.p, pr.n, j->handle, relay, j) >= 0) {
        last_ok = now_ms();
      } else {
        next_poll = now_ms() + RETRY_MS;
        if (now_ms() - last_ok > (int64_t)j->keepalive_ms * 3) gone(j, "Janus unreachable");
      }
    }
    if (atomic_load(&j->stop)) break;
    int64_t wait = (poll ? next_ka : (next_poll < next_ka ? next_poll : next_ka)) - now_ms();
    if (wait > 1000) wait = 1000;
    if (wait < 0) wait = 0;
    curl_multi_poll(j->multi, NULL, 0, (int)wait, NULL);
  }
  CURL *pending[2] = {poll, ka};
  for (int i = 0; i < 2; i++)
    if (pending[i]) {
      curl_multi_remove_handle(j->multi, pending[i]);
      curl_easy_cleanup(pending[i]);
    }
  free(pr.p);
  free(kr.p);
  return NULL;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static void destroy(parley__janus *j) {
  if (j->multi) curl_multi_cleanup(j->multi);
  parley__janus_ws_close(j->ws);
  free(j->url);
  free(j->session_url);
  free(j->handle_url);
  free(j->poll_url);
  free(j);
}

int parley__janus_open(const char *url, parley__janus_fn fn, void *user, parley__janus **out, char *err,
                       size_t cap) {
  if (out) *out = NULL;
  if (cap && err) err[0] = '\0';
  if (!url || !*url || !fn || !out) return PARLEY_EINVAL;
  if (!err) cap = 0;
  pthread_once(&curl_once, curl_init);
  parley__janus *j = calloc(1, sizeof *j);
  if (!j) return PARLEY_ENOMEM;
  j->fn = fn;
  j->user = user;
  j->request_ms = PARLEY__JANUS_REQUEST_MS;
  size_t len = strlen(url);
  while (len > 1 && url[len - 1] == '/') len--;
  j->url = strndup(url, len);
  bool ws = !strncmp(url, "ws://", 5);
  if (!strncmp(url, "wss://", 6)) { /* TLS over the WebSocket is not built in */
    if (cap) snprintf(err, cap, "Janus %s: wss:// is not supported (ws://, http:// or https://)", url);
    destroy(j);
    return PARLEY_EINVAL;
  }
  int rc = !j->url ? PARLEY_ENOMEM : 0;
  if (rc == 0 && ws) rc = parley__janus_ws_open(url, PARLEY__JANUS_REQUEST_MS, &j->ws, err, cap);
  else if (rc == 0 && !(j->multi = curl_multi_init())) rc = PARLEY_ENOMEM;
  if (rc == 0) rc = get_info(j, err, cap);
  if (rc == 0) rc = request_id(j, TO_JANUS, json_pack("{s:s}", "janus", "create"), &j->session, err, cap);
  if (rc == 0 && !ws && asprintf(&j->session_url, "%s/%" PRIu64, j->url, j->session) < 0) rc = PARLEY_ENOMEM;
  if (rc == 0)
    rc = request_id(j, TO_SESSION, json_pack("{s:s,s:s}", "janus", "attach", "plugin", "janus.plugin.audiobridge"),
                    &j->handle, err, cap);
  if (rc == 0 && !ws &&
      (asprintf(&j->handle_url, "%s/%" PRIu64, j->session_url, j->handle) < 0 ||
       asprintf(&j->poll_url, "%s?maxev=8", j->session_url) < 0))
    rc = PARLEY_ENOMEM;
  if (rc == 0 && ws) parley__janus_ws_start(j->ws, j->session, j->keepalive_ms, on_ws, j);
  if (rc == 0 && !ws && pthread_create(&j->thread, NULL, poll_main, j) != 0) rc = PARLEY_ENOMEM;
  if (rc < 0) {
    json_t *r;
    if (j->session && (ws || j->session_url) && request(j, TO_SESSION, json_pack("{s:s}", "janus", "destroy"), &r, NULL, 0) == 0)
      json_decref(r);
    destroy(j);
    return rc;
  }
  j->started = !ws;
  *out = j;
  return 0;
}

/* A plugin message (body consumed; jsep consumed, may be NULL) on our handle. */
static int message(parley__janus *j, json_t *body, json_t *jsep, char *err, size_t cap) {
  json_t *msg = json_pack("{s:s,s:o}", "janus", "message", "body", body);
  if (msg && jsep) json_object_set_new(msg, "jsep", jsep);
  else json_decref(jsep);
  json_t *r;
  int rc = request(j, TO_HANDLE, msg, &r, err, cap);
  if (rc == 0) json_decref(r);
  return rc;
}

int parley__janus_join(parley__janus *j, uint64_t room, const char *display, const char *pin, bool muted,
                       const char *offer_sdp, char *err, size_t cap) {
  if (!err) cap = 0;
  if (cap) err[0] = '\0';
  if (!j || !room || !display || !offer_sdp) return PARLEY_EINVAL;
  json_t *body = json_pack("{s:s,s:I,s:s,s:b}", "request", "join", "room", (json_int_t)room, "display", display,
                           "muted", muted);
  if (body && pin) json_object_set_new(body, "pin", json_string(pin));
  /* trickle false: the offer carries every candidate (parley ends it with a=end-of-candidates). */
  json_t *jsep = json_pack("{s:s,s:s,s:b}", "type", "offer", "sdp", offer_sdp, "trickle", 0);
  if (!body || !jsep) {
    json_decref(body);
    json_decref(jsep);
    return PARLEY_ENOMEM;
  }
  return message(j, body, jsep, err, cap);
}

int parley__janus_set_muted(parley__janus *j, bool muted) {
  if (!j) return PARLEY_EINVAL;
  json_t *body = json_pack("{s:s,s:b}", "request", "configure", "muted", muted);
  return body ? message(j, body, NULL, NULL, 0) : PARLEY_ENOMEM;
}

uint64_t parley__janus_self(parley__janus *j) { return j ? atomic_load(&j->self) : 0; }

void parley__janus_close(parley__janus *j) {
  if (!j) return;
  atomic_store(&j->stop, true);
  if (j->ws) parley__janus_ws_quiet(j->ws); /* its thread reads the answers below, silently */
  else curl_multi_wakeup(j->multi);
  if (j->started) pthread_join(j->thread, NULL);
  /* Leave first, so the others see "leaving" even if the rest fails; then the handle and session.
   * Best effort and short: an engine being freed waits for these. */
  j->request_ms = PARLEY__JANUS_CLOSE_MS;
  json_t *body = json_pack("{s:s}", "request", "leave");
  if (body) (void)message(j, body, NULL, NULL, 0);
  json_t *r;
  if (request(j, TO_HANDLE, json_pack("{s:s}", "janus", "detach"), &r, NULL, 0) == 0) json_decref(r);
  if (request(j, TO_SESSION, json_pack("{s:s}", "janus", "destroy"), &r, NULL, 0) == 0) json_decref(r);
  destroy(j);
}
