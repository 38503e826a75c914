/* call_serve.c: `parley-call serve ADDR`, a WHIP endpoint (RFC 9725) and the call page, on libmicrohttpd.
 *
 *   POST   /whip           application/sdp offer -> 201, Location /whip/ID, ETag, the SDP answer
 *   PATCH  /whip/ID        application/trickle-ice-sdpfrag: the browser's trickled candidates -> 204
 *                          (a stale ETag is 412); with If-Match "*" and new ICE credentials, an ICE
 *                          restart -> 200, parley's new credentials and candidates, a new ETag
 *   DELETE /whip/ID        hangs the call up -> 200 (the id is gone afterwards: 404)
 *   GET    /events/ID      Server-Sent Events: the call's parley events, {"t": ms since the POST,
 *                          "wall": Unix ms, "event": parley's name, "text": what it says}
 *   POST   /report         application/json from the page (?auto=1), appended to --report FILE
 *   GET    /, /FILE        the page (web/, embedded at build time)
 *
 * The answer goes back at once, with every candidate: parley gathers its host candidates while it
 * writes the description (a=end-of-candidates is in it), so waiting for gathering costs nothing, and a
 * WHIP client that cannot trickle still gets a working answer. The browser's own late candidates are
 * welcome by PATCH.
 *
 * Each call has its own engine, so --echo (or no audio) serves --max-calls calls at once; a file or a
 * device is one call at a time. Beyond that a POST gets 503 with Retry-After.
 *
 * Threads: everything runs on the main thread: libmicrohttpd in external-select mode shares one
 * select() with the engines' event fds (PARLEY_DISPATCH_APP), so handlers and event listeners never
 * race. An event stream waiting for news is a suspended connection, resumed when its call logs one.
 * Bodies are bounded (an offer or PATCH at PARLEY__CALLTOOL_SDP_MAX, a report at REPORT_MAX). */
#define _GNU_SOURCE /* getrandom */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/select.h>
#include <time.h>

#include "tools/call_lib.h"
#include "tools/call_tool.h"

#define SDP_CAP PARLEY__CALLTOOL_SDP_MAX
#define REPORT_MAX (1024 * 1024)
#define LOG_MAX 256     /* events a call keeps for its page (later ones are dropped, counted) */
#define LOG_LEN 400     /* one event as an SSE record */
#define STREAMS_MAX 4   /* event streams per call */

typedef struct serve_call serve_call;

typedef struct stream {
  serve_call *call;
  unsigned gen; /* the call's generation when the stream opened: a reused slot ends it */
  unsigned next;
  struct MHD_Connection *conn;
  bool used, suspended;
} stream;

struct serve_call {
  bool used;   /* the resource exists (until DELETE, or until the slot is reused after the call ended) */
  bool live;   /* its engine is open */
  unsigned gen;
  char id[33], etag[40], name[8]; /* name: the id's start, for the printed timeline */
  int64_t t0_us, interrupted_us;
  calltool_side s;
  calltool_echo echo;
  char *offer; /* the client's offer, the base of the re-offer an ICE restart makes (malloc) */
  char log[LOG_MAX][LOG_LEN];
  unsigned n_log, dropped;
  stream streams[STREAMS_MAX];
};

typedef struct server {
  const calltool_opts *o;
  struct MHD_Daemon *d;
  serve_call *calls;
  int n_slots, limit;
  FILE *report;
} server;

/* Per request: the body as it arrives, bounded. */
typedef struct request {
  char *body;
  size_t len, cap;
  bool too_big;
} request;

/* ---- the call's event log, for its page ------------------------------------------------------------- */

/* Appends text to out as a JSON string body (no quotes), within cap. */
static size_t json_escape(char *out, size_t cap, const char *text) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p && n + 7 < cap; p++) {
    if (*p == '"' || *p == '\\') {
      out[n++] = '\\';
      out[n++] = (char)*p;
    } else if (*p < 0x20) {
      n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *p);
    } else {
      out[n++] = (char)*p;
    }
  }
  out[n] = '\0';
  return n;
}

static void wake_streams(serve_call *c) {
  for (int i = 0; i < STREAMS_MAX; i++)
    if (c->streams[i].used && c->streams[i].suspended) {
      c->streams[i].suspended = false;
      MHD_resume_connection(c->streams[i].conn);
    }
}

/* One SSE record: data: {"t":MS,"event":"NAME","text":"..."} */
static void log_event(serve_call *c, int64_t t_us, const char *name, const char *text) {
  if (c->n_log == LOG_MAX) {
    c->dropped++;
    return;
  }
  char esc[256];
  json_escape(esc, sizeof esc, text);
  /* wall: Unix ms, so a test can line parley's events up with another process's (the browser's). */
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  long long wall_ms = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 - (calltool_now_us() - t_us) / 1000;
  snprintf(c->log[c->n_log++], LOG_LEN,
           "data: {\"t\":%lld,\"wall\":%lld,\"event\":\"%s\",\"text\":\"%s\"}\n\n",
           (long long)((t_us - c->t0_us) / 1000), wall_ms, name, esc);
  wake_streams(c);
}

static void on_call_event(const parley_event *ev, void *ctx) {
  serve_call *c = ctx;
  char what[192];
  parley__calltool_describe_event(what, sizeof what, ev);
  log_event(c, ev->time_us, parley_event_kind_name(ev->kind), what);
  if (ev->kind == PARLEY_EVENT_INTERRUPTED) c->interrupted_us = ev->time_us;
  if (ev->kind == PARLEY_EVENT_RESUMED) c->interrupted_us = 0;
  /* The peer's BYE ends our side too; the slot is swept once closed. */
  if (ev->kind == PARLEY_EVENT_TRACK_STOPPED && ev->reason == PARLEY_STOP_BYE) calltool_side_hangup(&c->s);
}

/* ---- calls ---------------------------------------------------------------------------------------------- */

static serve_call *find_call(server *sv, const char *id) {
  for (int i = 0; i < sv->n_slots; i++)
    if (sv->calls[i].used && strcmp(sv->calls[i].id, id) == 0) return &sv->calls[i];
  return NULL;
}

static int live_calls(const server *sv) {
  int n = 0;
  for (int i = 0; i < sv->n_slots; i++) n += sv->calls[i].live;
  return n;
}

/* Ends the streams of a slot that is being reused or freed: they see end-of-stream when resumed. */
static void retire(serve_call *c) {
  c->used = false;
  c->gen++;
  wake_streams(c);
}

/* A slot for a new call: a free one, else the one whose call ended longest ago. */
static serve_call *new_slot(server *sv) {
  serve_call *best = NULL;
  for (int i = 0; i < sv->n_slots; i++) {
    serve_call *c = &sv->calls[i];
    if (!c->used && !c->live) return c;
    if (!c->live && (!best || c->t0_us < best->t0_us)) best = c;
  }
  if (best) retire(best);
  return best;
}

/* The engine's part of the call ends here; the log stays for the page until the slot is reused. */
static void close_call(server *sv, serve_call *c, const char *why) {
  calltool_echo_stop(&c->echo);
  if (c->s.track_started) calltool_print_stats(&c->s);
  calltool_side_close(&c->s);
  c->live = false;
  log_event(c, calltool_now_us(), "server", why);
  printf("call %s: %s\n", c->id, why);
  (void)sv;
}

/* Closes calls that ended, hangs up calls that never connected or stayed interrupted past --timeout,
 * or ran past --duration. */
static void sweep(server *sv) {
  int64_t now = calltool_now_us(), limit_us = (int64_t)(sv->o->timeout_s * 1e6);
  for (int i = 0; i < sv->n_slots; i++) {
    serve_call *c = &sv->calls[i];
    if (!c->live) continue;
    if (c->s.closed) {
      close_call(sv, c, "closed");
      continue;
    }
    const char *why = NULL;
    if (!c->s.track_started && now - c->t0_us > limit_us) why = "no audio from the peer within --timeout";
    else if (c->interrupted_us && now - c->interrupted_us > limit_us) why = "interrupted for longer than --timeout";
    else if (sv->o->duration_s > 0 && now - c->t0_us > (int64_t)(sv->o->duration_s * 1e6)) why = "--duration reached";
    if (why && !c->s.bye) {
      log_event(c, now, "server", why);
      calltool_side_hangup(&c->s);
      c->s.bye = true; /* hung up: once */
    }
  }
}

/* ---- HTTP helpers -------------------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, const char *body,
                             size_t len, const char *hdr, const char *value) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  if (type) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (hdr) MHD_add_response_header(r, hdr, value);
  enum MHD_Result ok = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ok;
}

/* A 4xx/5xx with a one-line reason as text/plain. */
static enum MHD_Result reply_error(struct MHD_Connection *conn, unsigned status, const char *reason, const char *hdr,
                                   const char *value) {
  char text[256];
  int n = snprintf(text, sizeof text, "%s\n", reason);
  return reply(conn, status, "text/plain; charset=utf-8", text, (size_t)n, hdr, value);
}

/* The media type of the request without parameters ("application/sdp; charset=x" is application/sdp). */
static bool content_type_is(struct MHD_Connection *conn, const char *want) {
  const char *t = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (!t) return false;
  size_t n = strcspn(t, "; \t");
  return n == strlen(want) && strncasecmp(t, want, n) == 0;
}

/* ---- WHIP ---------------------------------------------------------------------------------------------- */

static void new_id(char *id) {
  unsigned char r[16];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) /* ids are names, not secrets: a clock will do */
    for (size_t i = 0; i < sizeof r; i++) r[i] = (unsigned char)(calltool_now_us() >> (i % 8 * 8)) ^ (unsigned char)i;
  for (size_t i = 0; i < sizeof r; i++) sprintf(id + 2 * i, "%02x", r[i]);
}

static enum MHD_Result whip_post(server *sv, struct MHD_Connection *conn, request *rq) {
  static char answer[SDP_CAP];
  if (strncmp(rq->body, "v=0", 3) != 0) return reply_error(conn, 400, "the body is not an SDP offer", NULL, NULL);
  if (live_calls(sv) >= sv->limit) {
    printf("whip: busy (%d call%s), 503\n", sv->limit, sv->limit == 1 ? "" : "s");
    return reply_error(conn, 503, "busy: parley-call serve takes no more calls now", "Retry-After", "5");
  }
  serve_call *c = new_slot(sv);
  if (!c) return reply_error(conn, 503, "busy: no free call slot", "Retry-After", "5");
  /* Fresh state, but the old streams stay: their connections may still be finishing (gen ends them). */
  unsigned gen = c->gen;
  stream streams[STREAMS_MAX];
  memcpy(streams, c->streams, sizeof streams);
  free(c->offer);
  memset(c, 0, sizeof *c);
  memcpy(c->streams, streams, sizeof streams);
  c->gen = gen;
  new_id(c->id);
  snprintf(c->name, sizeof c->name, "%.6s", c->id);
  snprintf(c->etag, sizeof c->etag, "\"%.16s\"", c->id);
  c->t0_us = calltool_now_us();
  calltool_side_init(&c->s, c->name, sv->o->quiet);
  c->s.hook = on_call_event;
  c->s.hook_ctx = c;
  c->used = true;
  log_event(c, c->t0_us, "server", "offer received");
  parley_engine_config cfg;
  calltool_peer_config(sv->o, &cfg);
  parley_sdp_error se;
  memset(&se, 0, sizeof se);
  int err = calltool_side_open(&c->s, &cfg);
  if (err < 0) {
    c->used = false;
    calltool_side_close(&c->s);
    return reply_error(conn, 500, "cannot open an engine for the call (see the server's log)", NULL, NULL);
  }
  c->live = true;
  c->offer = strdup(rq->body);
  const char *stage = "the offer";
  if (!c->offer) err = PARLEY_ENOMEM;
  else if ((err = parley_call_set_remote_description(c->s.call, PARLEY_SDP_OFFER, rq->body, &se)) >= 0) {
    stage = "the answer";
    if ((err = parley_call_create_answer(c->s.call, answer, sizeof answer)) >= 0 &&
        (err = parley_call_set_local_description(c->s.call, answer)) >= 0) {
      stage = "starting";
      err = parley_call_start(c->s.call);
    }
  }
  if (err >= 0 && sv->o->echo) {
    stage = "the echo";
    err = calltool_echo_start(&c->echo, c->s.eng, sv->o->frame_ms);
  }
  if (err < 0) {
    char why[400];
    snprintf(why, sizeof why, "%s: %s%s%s", stage, parley_strerror(err), se.message[0] ? ": " : "", se.message);
    printf("whip: rejected: %s\n", why);
    close_call(sv, c, "rejected");
    c->used = false;
    /* An offer we cannot take is the client's problem (400); anything else is ours. */
    bool theirs = strcmp(stage, "the offer") == 0 && err != PARLEY_ENOMEM;
    return reply_error(conn, theirs ? 400 : 500, why, NULL, NULL);
  }
  char location[64];
  snprintf(location, sizeof location, "/whip/%s", c->id);
  log_event(c, calltool_now_us(), "server", "answer sent");
  printf("call %s: answered (%d live)\n", c->id, live_calls(sv));
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(answer), answer, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/sdp");
  MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
  MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, c->etag);
  /* The page's event stream, for a client that wants it (RFC 8288 link; the rel is ours). */
  char link[96];
  snprintf(link, sizeof link, "</events/%s>; rel=\"urn:parley:events\"", c->id);
  MHD_add_response_header(r, "Link", link);
  enum MHD_Result ok = MHD_queue_response(conn, 201, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result whip_delete(server *sv, struct MHD_Connection *conn, serve_call *c) {
  printf("call %s: DELETE\n", c->id);
  log_event(c, calltool_now_us(), "server", "DELETE: hanging up");
  if (c->live) calltool_side_hangup(&c->s); /* closed follows; sweep() frees the engine */
  c->used = false; /* the resource is gone: a second DELETE is 404; open streams run to closed */
  (void)sv;
  return reply(conn, 200, NULL, "", 0, NULL, NULL);
}

/* Feeds a fragment's a=candidate / a=end-of-candidates lines to the call: the number added, or the first
 * refusal (why filled). */
static int add_candidates(serve_call *c, char *frag, char *why, size_t why_cap) {
  int added = 0;
  for (char *line = frag; line && *line;) {
    char *end = strpbrk(line, "\r\n");
    if (end) *end = '\0';
    if (strncmp(line, "a=candidate:", 12) == 0 || strcmp(line, "a=end-of-candidates") == 0) {
      int err = parley_call_add_remote_candidate(c->s.call, line);
      if (err < 0) {
        snprintf(why, why_cap, "candidate refused: %s: %.100s", parley_strerror(err), line);
        return err;
      }
      added++;
    }
    line = end ? end + 1 + (end[1] == '\n') : NULL;
  }
  return added;
}

/* RFC 9725 4.4.2, an ICE restart: the client's fragment carries new credentials (and maybe candidates).
 * The call's offer with those credentials and without its old candidates is a re-offer that restarts
 * parley's side too; parley's new credentials and candidates go back as a fragment with a new ETag. */
static enum MHD_Result whip_restart(struct MHD_Connection *conn, serve_call *c, request *rq) {
  static char offer[SDP_CAP], answer[SDP_CAP], frag[SDP_CAP];
  char why[300];
  int n = parley__calltool_sdp_restart(c->offer, rq->body, offer, sizeof offer);
  if (n == PARLEY_EPARSE) return reply_error(conn, 400, "an ICE restart needs a=ice-ufrag and a=ice-pwd", NULL, NULL);
  if (n < 0) return reply_error(conn, 413, "the re-offer does not fit", NULL, NULL);
  parley_sdp_error se;
  memset(&se, 0, sizeof se);
  int err = parley_call_set_remote_description(c->s.call, PARLEY_SDP_OFFER, offer, &se);
  if (err >= 0 && (err = parley_call_create_answer(c->s.call, answer, sizeof answer)) >= 0)
    err = parley_call_set_local_description(c->s.call, answer);
  if (err < 0) {
    snprintf(why, sizeof why, "ICE restart: %s%s%s", parley_strerror(err), se.message[0] ? ": " : "", se.message);
    return reply_error(conn, err == PARLEY_ESTATE ? 409 : 400, why, NULL, NULL);
  }
  /* The fragment: parley's credentials, then its audio section's candidates (RFC 8840). */
  if (parley__calltool_ice_frag(answer, frag, sizeof frag) < 0)
    return reply_error(conn, 500, "parley's answer has no ICE credentials, or its fragment does not fit", NULL, NULL);
  char tag[33];
  new_id(tag);
  snprintf(c->etag, sizeof c->etag, "\"%.16s\"", tag);
  log_event(c, calltool_now_us(), "server", "PATCH: ICE restart answered");
  printf("call %s: ICE restart\n", c->id);
  return reply(conn, 200, "application/trickle-ice-sdpfrag", frag, strlen(frag), MHD_HTTP_HEADER_ETAG, c->etag);
}

/* RFC 8840 fragment: a=candidate lines and a=end-of-candidates go to the call; ICE credentials and
 * m=/a=mid lines only say which session they belong to (one audio section here). */
static enum MHD_Result whip_patch(server *sv, struct MHD_Connection *conn, serve_call *c, request *rq) {
  (void)sv;
  const char *match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH);
  if (match && strcmp(match, "*") == 0) {
    if (!c->live) return reply_error(conn, 409, "the call has ended", NULL, NULL);
    return whip_restart(conn, c, rq);
  }
  if (match && strcmp(match, c->etag) != 0)
    return reply_error(conn, 412, "If-Match does not match this session's ETag", NULL, NULL);
  if (!c->live) return reply_error(conn, 409, "the call has ended", NULL, NULL);
  char why[300];
  int added = add_candidates(c, rq->body, why, sizeof why);
  if (added < 0) return reply_error(conn, added == PARLEY_ESTATE || added == PARLEY_EFULL ? 409 : 400, why, NULL, NULL);
  char note[64];
  snprintf(note, sizeof note, "PATCH: %d trickled line%s", added, added == 1 ? "" : "s");
  log_event(c, calltool_now_us(), "server", note);
  return reply(conn, 204, NULL, "", 0, NULL, NULL);
}

/* ---- Server-Sent Events ------------------------------------------------------------------------------- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  stream *st = cls;
  serve_call *c = st->call;
  if (c->gen != st->gen) return MHD_CONTENT_READER_END_OF_STREAM; /* deleted or reused */
  if (st->next < c->n_log) {
    size_t n = strlen(c->log[st->next]);
    if (n > max) n = max; /* max is the block size (LOG_LEN): never cut in practice */
    memcpy(buf, c->log[st->next++], n);
    return (ssize_t)n;
  }
  if (!c->live) return MHD_CONTENT_READER_END_OF_STREAM;
  st->suspended = true;
  MHD_suspend_connection(st->conn);
  return 0;
}

static void stream_free(void *cls) {
  stream *st = cls;
  st->used = false;
  st->suspended = false;
}

static enum MHD_Result events_get(struct MHD_Connection *conn, serve_call *c) {
  stream *st = NULL;
  for (int i = 0; i < STREAMS_MAX && !st; i++)
    if (!c->streams[i].used) st = &c->streams[i];
  if (!st) return reply_error(conn, 503, "too many event streams for this call", "Retry-After", "5");
  *st = (stream){.call = c, .gen = c->gen, .conn = conn, .used = true};
  struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LOG_LEN, stream_read, st, stream_free);
  if (!r) {
    st->used = false;
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  enum MHD_Result ok = MHD_queue_response(conn, 200, r);
  MHD_destroy_response(r);
  return ok;
}

/* ---- routing ------------------------------------------------------------------------------------------ */

static enum MHD_Result on_report(server *sv, struct MHD_Connection *conn, request *rq) {
  if (!content_type_is(conn, "application/json"))
    return reply_error(conn, 415, "a report is application/json", NULL, NULL);
  for (size_t i = 0; i < rq->len; i++) /* one line per report */
    if (rq->body[i] == '\n' || rq->body[i] == '\r') rq->body[i] = ' ';
  printf("report: %zu bytes: %.160s%s\n", rq->len, rq->body, rq->len > 160 ? " ..." : "");
  if (sv->report) {
    fprintf(sv->report, "%s\n", rq->body);
    fflush(sv->report);
  }
  return reply(conn, 204, NULL, "", 0, NULL, NULL);
}

static enum MHD_Result serve_file(struct MHD_Connection *conn, const char *url) {
  if (strcmp(url, "/") == 0) url = "/index.html";
  for (size_t i = 0; i < calltool_web_file_count; i++)
    if (strcmp(calltool_web_files[i].path, url) == 0) {
      struct MHD_Response *r = MHD_create_response_from_buffer(
          calltool_web_files[i].size, (void *)calltool_web_files[i].data, MHD_RESPMEM_PERSISTENT);
      if (!r) return MHD_NO;
      MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, calltool_web_files[i].type);
      MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
      enum MHD_Result ok = MHD_queue_response(conn, 200, r);
      MHD_destroy_response(r);
      return ok;
    }
  return reply_error(conn, 404, "no such page", NULL, NULL);
}

static bool is(const char *method, const char *want) { return strcmp(method, want) == 0; }

/* What may carry a body here, and how much. 0: nothing expected. */
static size_t body_cap(const char *url, const char *method) {
  if (strcmp(url, "/report") == 0 && is(method, "POST")) return REPORT_MAX;
  if (strncmp(url, "/whip", 5) == 0 && (is(method, "POST") || is(method, "PATCH"))) return SDP_CAP;
  return 0;
}

static enum MHD_Result route(server *sv, struct MHD_Connection *conn, const char *url, const char *method,
                             request *rq) {
  if (rq->too_big) {
    char why[96];
    snprintf(why, sizeof why, "body too large (at most %zu bytes)", rq->cap - 1);
    return reply_error(conn, 413, why, NULL, NULL);
  }
  if (strcmp(url, "/whip") == 0) {
    if (is(method, "OPTIONS")) return reply(conn, 204, NULL, "", 0, "Accept-Post", "application/sdp");
    if (!is(method, "POST")) return reply_error(conn, 405, "use POST on /whip", MHD_HTTP_HEADER_ALLOW, "POST, OPTIONS");
    if (!content_type_is(conn, "application/sdp"))
      return reply_error(conn, 415, "an offer is Content-Type: application/sdp", "Accept-Post", "application/sdp");
    if (rq->len == 0) return reply_error(conn, 400, "empty offer", NULL, NULL);
    return whip_post(sv, conn, rq);
  }
  if (strncmp(url, "/whip/", 6) == 0) {
    serve_call *c = find_call(sv, url + 6);
    if (!c) return reply_error(conn, 404, "no such call (ended, deleted, or never made)", NULL, NULL);
    if (is(method, "DELETE")) return whip_delete(sv, conn, c);
    if (is(method, "PATCH")) {
      if (!content_type_is(conn, "application/trickle-ice-sdpfrag"))
        return reply_error(conn, 415, "PATCH takes application/trickle-ice-sdpfrag", "Accept-Patch",
                           "application/trickle-ice-sdpfrag");
      return whip_patch(sv, conn, c, rq);
    }
    return reply_error(conn, 405, "a call takes PATCH or DELETE", MHD_HTTP_HEADER_ALLOW, "PATCH, DELETE");
  }
  if (strncmp(url, "/events/", 8) == 0) {
    if (!is(method, "GET")) return reply_error(conn, 405, "events are GET", MHD_HTTP_HEADER_ALLOW, "GET");
    serve_call *c = find_call(sv, url + 8);
    if (!c) return reply_error(conn, 404, "no such call", NULL, NULL);
    return events_get(conn, c);
  }
  if (strcmp(url, "/report") == 0) {
    if (!is(method, "POST")) return reply_error(conn, 405, "reports are POSTed", MHD_HTTP_HEADER_ALLOW, "POST");
    return on_report(sv, conn, rq);
  }
  if (!is(method, "GET") && !is(method, "HEAD"))
    return reply_error(conn, 405, "pages are GET", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  return serve_file(conn, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req_cls) {
  (void)version;
  server *sv = cls;
  request *rq = *req_cls;
  if (!rq) { /* headers only so far */
    size_t cap = body_cap(url, method);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && cap && strtoull(cl, NULL, 10) >= cap) { /* refuse before reading it */
      char why[96];
      snprintf(why, sizeof why, "body too large (at most %zu bytes)", cap - 1);
      return reply_error(conn, 413, why, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    if (!(rq = calloc(1, sizeof *rq)) || !(rq->body = malloc(cap ? cap : 1))) {
      free(rq);
      return MHD_NO;
    }
    rq->cap = cap ? cap : 1;
    rq->body[0] = '\0';
    *req_cls = rq;
    return MHD_YES;
  }
  if (*upload_size) {
    if (rq->len + *upload_size < rq->cap) {
      memcpy(rq->body + rq->len, upload, *upload_size);
      rq->len += *upload_size;
      rq->body[rq->len] = '\0';
    } else {
      rq->too_big = true; /* read and dropped; answered 413 once it is all in */
    }
    *upload_size = 0;
    return MHD_YES;
  }
  return route(sv, conn, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode code) {
  (void)cls;
  (void)conn;
  (void)code;
  request *rq = *req_cls;
  if (rq) free(rq->body);
  free(rq);
  *req_cls = NULL;
}

/* ---- the loop ---------------------------------------------------------------------------------------- */

static void run(server *sv) {
  while (!calltool_stopping()) {
    fd_set rs, ws, es;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
    MHD_socket max = 0;
    if (MHD_get_fdset(sv->d, &rs, &ws, &es, &max) != MHD_YES) break;
    for (int i = 0; i < sv->n_slots; i++)
      if (sv->calls[i].live) {
        int fd = parley_engine_event_fd(sv->calls[i].s.eng);
        if (fd >= 0 && fd < FD_SETSIZE) {
          FD_SET(fd, &rs);
          if (fd > max) max = fd;
        }
      }
    MHD_UNSIGNED_LONG_LONG mhd_ms = 200;
    if (MHD_get_timeout(sv->d, &mhd_ms) != MHD_YES || mhd_ms > 200) mhd_ms = 200;
    struct timeval tv = {0, (long)mhd_ms * 1000};
    int r = select(max + 1, &rs, &ws, &es, &tv);
    if (r < 0 && errno != EINTR) break;
    if (r < 0) continue;
    MHD_run_from_select(sv->d, &rs, &ws, &es);
    for (int i = 0; i < sv->n_slots; i++)
      if (sv->calls[i].live && FD_ISSET(parley_engine_event_fd(sv->calls[i].s.eng), &rs))
        parley_engine_dispatch(sv->calls[i].s.eng);
    calltool_flush_timeline();
    sweep(sv);
  }
}

static bool streams_open(const server *sv) {
  for (int i = 0; i < sv->n_slots; i++)
    for (int k = 0; k < STREAMS_MAX; k++)
      if (sv->calls[i].streams[k].used) return true;
  return false;
}

/* Hangs up every call and waits (bounded) for them to close. */
static void hang_up_all(server *sv) {
  for (int i = 0; i < sv->n_slots; i++)
    if (sv->calls[i].live) calltool_side_hangup(&sv->calls[i].s);
  int64_t until = calltool_now_us() + 2000000;
  for (bool open = true; open && calltool_now_us() < until;) {
    open = false;
    for (int i = 0; i < sv->n_slots; i++)
      if (sv->calls[i].live && !sv->calls[i].s.closed) {
        parley_engine_dispatch(sv->calls[i].s.eng);
        open = open || !sv->calls[i].s.closed;
      }
    struct timespec nap = {0, 20000000};
    if (open) nanosleep(&nap, NULL);
  }
  calltool_flush_timeline();
  for (int i = 0; i < sv->n_slots; i++)
    if (sv->calls[i].live) close_call(sv, &sv->calls[i], "server stopping");
  /* The event streams send what is left, "server stopping" last, and end: the daemon stops after. */
  for (int64_t by = calltool_now_us() + 2000000; streams_open(sv) && calltool_now_us() < by;) {
    MHD_run_wait(sv->d, 20);
  }
}

int calltool_serve(const calltool_opts *o) {
  char ip[PARLEY__VIA_IP_MAX];
  int port = 0;
  if (strchr(o->addr, ':')) {
    if (parley__via_split_hostport(o->addr, ip, sizeof ip, &port) != 0 || strchr(ip, ':')) {
      fprintf(stderr, "parley-call: serve: bad address '%s' (want HOST:PORT, numeric IPv4, or PORT)\n", o->addr);
      return 2;
    }
  } else {
    char *end;
    long p = strtol(o->addr, &end, 10);
    if (*end || p < 0 || p > 65535) {
      fprintf(stderr, "parley-call: serve: bad port '%s'\n", o->addr);
      return 2;
    }
    snprintf(ip, sizeof ip, "127.0.0.1");
    port = (int)p;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, ip, &sa.sin_addr);

  server sv;
  memset(&sv, 0, sizeof sv);
  sv.o = o;
  /* One engine per call: --echo and silence share nothing; a file or a device is one call's. */
  sv.limit = (o->in || o->out || o->device) ? 1 : o->max_calls;
  sv.n_slots = sv.limit * 2; /* ended calls keep their event log for their page a while */
  int rc = 1;
  if (!(sv.calls = calloc((size_t)sv.n_slots, sizeof *sv.calls))) return calltool_fail("serve", PARLEY_ENOMEM);
  if (o->report && !(sv.report = fopen(o->report, "a"))) {
    fprintf(stderr, "parley-call: serve: cannot open %s: %s\n", o->report, strerror(errno));
    goto out;
  }
  sv.d = MHD_start_daemon(MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)port, NULL, NULL, on_request, &sv,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &sv,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                          MHD_OPTION_END);
  if (!sv.d) {
    fprintf(stderr, "parley-call: serve: cannot listen at %s:%d: %s\n", ip, port, strerror(errno));
    goto out;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(sv.d, MHD_DAEMON_INFO_BIND_PORT);
  printf("serving at http://%s:%u/ (WHIP endpoint /whip, %d call%s at once)\n", ip,
         info ? (unsigned)info->port : (unsigned)port, sv.limit, sv.limit == 1 ? "" : "s");
  run(&sv);
  hang_up_all(&sv);
  rc = 0;
out:
  if (sv.d) MHD_stop_daemon(sv.d);
  if (sv.report) fclose(sv.report);
  for (int i = 0; sv.calls && i < sv.n_slots; i++) free(sv.calls[i].offer);
  free(sv.calls);
  return rc;
}
