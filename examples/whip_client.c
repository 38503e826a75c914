/* whip_client.c: call a WHIP endpoint (RFC 9725), such as `parley-call serve`, with parley and libcurl.
 * WHIP is the signalling: POST the offer as application/sdp, take the 201's answer and Location, and
 * DELETE the Location to hang up. Everything else is an ordinary parley call.
 *
 *   parley-call serve 127.0.0.1:8080 --echo &
 *   whip_client http://127.0.0.1:8080/whip [input.wav [output.wav [seconds]]]
 *
 * Plays input.wav into the call (else silence), writes what it hears to output.wav, hangs up after
 * `seconds` (default 3) of audio. Exits 0 when the peer's audio started and the DELETE was accepted.
 * Bounded: every HTTP request by 5 s, the call's start by 10 s. */
/* pkg-config: libcurl */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <parley/parley.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_util.h"

static atomic_int g_started, g_closed;

/* Listeners run on the engine's dispatch thread. */
static void on_event(const parley_event *ev, void *user) {
  (void)user;
  printf("%s", parley_event_kind_name(ev->kind));
  if (ev->kind == PARLEY_EVENT_PEER_STATE_CHANGED) printf(" %s", parley_peer_state_name(ev->peer_state));
  if (ev->kind == PARLEY_EVENT_TRACK_STOPPED) printf(" (%s)", parley_stop_reason_name(ev->reason));
  if (ev->kind == PARLEY_EVENT_TRACK_STARTED) atomic_store(&g_started, 1);
  if (ev->kind == PARLEY_EVENT_CLOSED) atomic_store(&g_closed, 1);
  printf("\n");
  fflush(stdout);
}

typedef struct body {
  char text[16384];
  size_t len;
} body;

static size_t on_body(char *data, size_t size, size_t n, void *user) {
  body *b = user;
  size_t len = size * n;
  if (b->len + len >= sizeof b->text) return 0; /* too large: curl fails the transfer */
  memcpy(b->text + b->len, data, len);
  b->len += len;
  b->text[b->len] = '\0';
  return len;
}

/* POSTs the offer; on 201 fills answer and location (absolute). Returns the HTTP status, or -1. */
static long whip_post(const char *url, const char *offer, body *answer, char *location, size_t cap) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/sdp");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, offer);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  long status = -1;
  struct curl_header *h;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status == 201 && curl_easy_header(c, "Location", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
    /* The Location may be relative to the endpoint's URL. */
    CURLU *u = curl_url();
    char *abs = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, h->value, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK)
      snprintf(location, cap, "%s", abs);
    curl_free(abs);
    curl_url_cleanup(u);
  }
  curl_slist_free_all(hdr);
  curl_easy_cleanup(c);
  return status;
}

static long whip_delete(const char *location) {
  CURL *c = curl_easy_init();
  if (!c) return -1;
  body ignored = {.len = 0};
  curl_easy_setopt(c, CURLOPT_URL, location);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ignored);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  long status = -1;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  return status;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: whip_client URL [input.wav [output.wav [seconds]]]\n");
    return 2;
  }
  const char *url = argv[1];
  int seconds = argc > 4 ? atoi(argv[4]) : 3;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;

  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  if (strstr(url, "://127.") || strstr(url, "://localhost")) { /* a server on this host: stay on loopback */
    cfg.loopback_candidates = 1;
    cfg.ipv6 = 0;
  }
  if (argc > 2) {
    cfg.audio = PARLEY_AUDIO_FILE;
    cfg.input_file = argc > 2 && argv[2][0] ? argv[2] : NULL;
    cfg.output_file = argc > 3 ? argv[3] : NULL;
    cfg.input_file_at_media = 1; /* the clip starts with the call, not with the engine */
  }
  parley_engine *eng = NULL;
  parley_call *call = NULL;
  if (check(parley_engine_new(&cfg, &eng), "engine") < 0) return 1;
  if (check(parley_call_new(eng, &call), "call") < 0) return 1;
  int ids[PARLEY_EVENT_CALL_KIND_COUNT];
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) ids[k] = parley_call_on(call, (parley_event_kind)k, on_event, NULL);

  /* WHIP: our offer out, the server's answer back. Host candidates are in the offer already. */
  static char offer[8192], location[2048];
  static body answer;
  parley_sdp_error se;
  if (check(parley_call_create_offer(call, offer, sizeof offer), "offer") < 0 ||
      check(parley_call_set_local_description(call, offer), "local description") < 0)
    return 1;
  long status = whip_post(url, offer, &answer, location, sizeof location);
  if (status != 201 || !location[0]) {
    fprintf(stderr, "POST %s: HTTP %ld %s\n", url, status, answer.text);
    return 1;
  }
  printf("201 Created: %s\n", location);
  if (check(parley_call_set_remote_description(call, PARLEY_SDP_ANSWER, answer.text, &se), "answer") < 0) {
    fprintf(stderr, "line %d: %s\n", se.line, se.message);
    whip_delete(location);
    return 1;
  }
  if (check(parley_call_start(call), "start") < 0) return 1;

  for (int i = 0; i < 200 && !atomic_load(&g_started); i++) sleep_ms(50);
  int ok = atomic_load(&g_started);
  if (ok) sleep_ms(seconds * 1000);
  else fprintf(stderr, "the peer's audio did not start within 10 s\n");

  /* WHIP's hang-up is DELETE; our BYE follows, and the call ends with closed. */
  long deleted = whip_delete(location);
  printf("DELETE %s: HTTP %ld\n", location, deleted);
  parley_call_hangup(call);
  for (int i = 0; i < 100 && !atomic_load(&g_closed); i++) sleep_ms(20);
  for (int k = 0; k < PARLEY_EVENT_CALL_KIND_COUNT; k++) parley_call_off(call, ids[k]);
  parley_call_free(call);
  parley_engine_free(eng);
  curl_global_cleanup();
  ok = ok && deleted >= 200 && deleted < 300;
  printf("%s\n", ok ? "ok: a WHIP call, hung up with DELETE" : "FAILED");
  return ok ? 0 : 1;
}
