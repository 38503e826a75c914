/* call_whip.c: parley-call's WHIP client exchange (RFC 9725) over libcurl: POST the offer, take the
 * 201's answer and Location; PATCH an ICE restart's fragment to the Location; DELETE it to hang up. The rest of the call is call.c's run_peer,
 * as for dial or offer. Main thread; each request blocks at most timeout_ms. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "tools/call_tool.h"

typedef struct sink {
  char *buf;
  size_t cap, len;
  bool overflow;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *ctx) {
  sink *s = ctx;
  size_t len = size * n;
  if (s->len + len >= s->cap) {
    s->overflow = true;
    return 0; /* curl aborts the transfer: CURLE_WRITE_ERROR */
  }
  memcpy(s->buf + s->len, data, len);
  s->len += len;
  s->buf[s->len] = '\0';
  return len;
}

/* The server's short reason in an error body: its first line, at most 200 bytes. */
static void print_reason(const char *what, long status, const char *body) {
  int n = (int)strcspn(body, "\r\n");
  fprintf(stderr, "parley-call: whip %s: HTTP %ld%s%.*s\n", what, status, n ? ": " : "", n > 200 ? 200 : n, body);
}

/* Performs c's request: 0 when the server answered with status want, else prints why (what: "offer",
 * "ICE restart") and returns PARLEY_ENOSPC (body overflow), PARLEY_ENETWORK or PARLEY_EPARSE. */
static int perform(CURL *c, const char *what, const char *url, const sink *body, long want) {
  long status = 0;
  CURLcode e = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (e == CURLE_WRITE_ERROR && body->overflow) {
    fprintf(stderr, "parley-call: whip %s: the reply is larger than %zu bytes\n", what, body->cap - 1);
    return PARLEY_ENOSPC;
  }
  if (e != CURLE_OK) {
    fprintf(stderr, "parley-call: whip %s (%s): %s\n", what, url, curl_easy_strerror(e));
    return PARLEY_ENETWORK;
  }
  if (status != want) {
    print_reason(what, status, body->buf);
    return PARLEY_EPARSE;
  }
  return 0;
}

static CURL *easy(const char *url, int timeout_ms, sink *body) {
  CURL *c = curl_easy_init();
  if (!c) return NULL;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
  return c;
}

int calltool_whip_offer(const char *url, const char *sdp, int timeout_ms, char *answer, size_t cap, char *location,
                        size_t location_cap) {
  answer[0] = location[0] = '\0';
  sink body = {answer, cap, 0, false};
  CURL *c = easy(url, timeout_ms, &body);
  if (!c) return PARLEY_ENOMEM;
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/sdp");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, sdp);
  struct curl_header *h = NULL;
  int rc = perform(c, "offer", url, &body, 201);
  if (rc == 0 && (curl_easy_header(c, "Location", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h->value[0])) {
    fprintf(stderr, "parley-call: whip offer: 201 without a Location\n");
    rc = PARLEY_EPARSE;
  } else if (rc == 0) {
    /* Location may be relative (RFC 9725 allows it): resolve it against the endpoint's URL. */
    CURLU *u = curl_url();
    char *abs = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, h->value, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK &&
        strlen(abs) < location_cap) {
      snprintf(location, location_cap, "%s", abs);
    } else {
      fprintf(stderr, "parley-call: whip offer: unusable Location '%s'\n", h->value);
      rc = PARLEY_EPARSE;
    }
    curl_free(abs);
    curl_url_cleanup(u);
    if (rc == 0 && strncmp(answer, "v=0", 3) != 0) {
      fprintf(stderr, "parley-call: whip offer: the 201's body is not an SDP answer\n");
      rc = PARLEY_EPARSE;
    }
  }
  curl_slist_free_all(hdr);
  curl_easy_cleanup(c);
  return rc;
}

int calltool_whip_restart(const char *location, const char *frag, int timeout_ms, char *reply, size_t cap, char *etag,
                          size_t etag_cap) {
  reply[0] = etag[0] = '\0';
  sink body = {reply, cap, 0, false};
  CURL *c = easy(location, timeout_ms, &body);
  if (!c) return PARLEY_ENOMEM;
  /* RFC 9725 4.4.2: a restart is If-Match: * (an ETag there would make it a trickle). */
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/trickle-ice-sdpfrag");
  struct curl_slist *both = hdr ? curl_slist_append(hdr, "If-Match: *") : NULL;
  struct curl_header *h = NULL;
  int rc = PARLEY_ENOMEM;
  if (both) {
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, frag);
    rc = perform(c, "ICE restart", location, &body, 200);
  }
  if (rc == 0 && curl_easy_header(c, "ETag", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && strlen(h->value) < etag_cap)
    snprintf(etag, etag_cap, "%s", h->value);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(c);
  return rc;
}

int calltool_whip_delete(const char *location, int timeout_ms) {
  char buf[512];
  buf[0] = '\0';
  sink body = {buf, sizeof buf, 0, false};
  CURL *c = easy(location, timeout_ms, &body);
  if (!c) return PARLEY_ENOMEM;
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  long status = 0;
  CURLcode e = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (e != CURLE_OK && !(e == CURLE_WRITE_ERROR && body.overflow)) {
    fprintf(stderr, "parley-call: whip hang-up (DELETE %s): %s\n", location, curl_easy_strerror(e));
    return PARLEY_ENETWORK;
  }
  if (status < 200 || status > 299) {
    print_reason("hang-up", status, buf);
    return PARLEY_EPARSE;
  }
  printf("whip: DELETE %s: %ld\n", location, status);
  return 0;
}
