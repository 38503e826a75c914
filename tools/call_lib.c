/* call_lib.c: helpers of parley-call (see call_lib.h): the TCP rendezvous,
 * SDP file/stream exchange and timeline formatting. Owns nothing between calls; all of it runs on the
 * tool's control thread and may block (bounded by the caller's timeouts). Not real-time code. */
#define _POSIX_C_SOURCE 200809L
#include "tools/call_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- TCP rendezvous --------------------------------------------------------------------------- */

/* "HOST:PORT" (parley__via_split_hostport) or "PORT" alone (127.0.0.1). */
static int parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *sl) {
  if (!text || !*text) return PARLEY_EINVAL;
  char host[PARLEY__VIA_IP_MAX], full[PARLEY__VIA_IP_MAX + 16];
  int port;
  if (!strchr(text, ':') && strlen(text) < 8) { /* a port alone */
    snprintf(full, sizeof full, "127.0.0.1:%s", text);
    text = full;
  }
  if (parley__via_split_hostport(text, host, sizeof host, &port) != 0) return PARLEY_EINVAL;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *sl = sizeof *s4;
  } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *sl = sizeof *s6;
  } else {
    return PARLEY_EINVAL;
  }
  return 0;
}

int parley__calltool_rv_listen(const char *addr, int *bound_port, int *listen_fd) {
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!listen_fd || parse_addr(addr, &ss, &sl) != 0) return PARLEY_EINVAL;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return PARLEY_ENETWORK;
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1) != 0) {
    int e = errno; /* the reason, kept across close */
    close(fd);
    errno = e;
    return PARLEY_ENETWORK;
  }
  if (bound_port) {
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &gl);
    *bound_port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                 : ((struct sockaddr_in6 *)&got)->sin6_port);
  }
  *listen_fd = fd;
  return 0;
}

int parley__calltool_rv_accept(int listen_fd, int timeout_ms) {
  if (listen_fd < 0) return PARLEY_EINVAL;
  int64_t deadline = mono_ms() + timeout_ms;
  for (;;) {
    int64_t left = deadline - mono_ms();
    if (left <= 0) return PARLEY_ETIMEDOUT;
    struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
    int r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno != EINTR) return PARLEY_ENETWORK;
    if (r <= 0) continue;
    int fd = accept(listen_fd, NULL, NULL);
    if (fd >= 0) return fd;
    if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) return PARLEY_ENETWORK;
  }
}

int parley__calltool_rv_dial(const char *addr, int timeout_ms) {
  struct sockaddr_storage ss;
  socklen_t sl;
  if (parse_addr(addr, &ss, &sl) != 0) return PARLEY_EINVAL;
  int64_t deadline = mono_ms() + timeout_ms;
  for (;;) {
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return PARLEY_ENETWORK;
    if (connect(fd, (struct sockaddr *)&ss, sl) == 0) return fd;
    int e = errno;
    close(fd);
    errno = e;
    if (e != ECONNREFUSED && e != EINTR && e != ETIMEDOUT) return PARLEY_ENETWORK;
    if (mono_ms() >= deadline) return PARLEY_ETIMEDOUT;
    nap_ms(50); /* the listener is not up yet: retry at a modest pace until the deadline */
  }
}

int parley__calltool_msg_send(int fd, const char *text) {
  if (fd < 0 || !text) return PARLEY_EINVAL;
  size_t n = strlen(text);
  if (n > PARLEY__CALLTOOL_MAX_MSG) return PARLEY_EINVAL;
  unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                          (unsigned char)n};
  const char *parts[2] = {(const char *)hdr, text};
  size_t lens[2] = {4, n};
  for (int i = 0; i < 2; i++) {
    size_t off = 0;
    while (off < lens[i]) {
      ssize_t w = send(fd, parts[i] + off, lens[i] - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return PARLEY_ENETWORK;
      off += (size_t)w;
    }
  }
  return 0;
}

/* Reads exactly n bytes before the deadline. */
static int read_full(int fd, unsigned char *buf, size_t n, int64_t deadline) {
  size_t off = 0;
  while (off < n) {
    int64_t left = deadline - mono_ms();
    if (left <= 0) return PARLEY_ETIMEDOUT;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno != EINTR) return PARLEY_ENETWORK;
    if (r <= 0) continue;
    ssize_t got = recv(fd, buf + off, n - off, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return PARLEY_ENETWORK;
    off += (size_t)got;
  }
  return 0;
}

int parley__calltool_msg_recv(int fd, char *buf, size_t cap, int timeout_ms, size_t *size) {
  if (fd < 0 || !buf || cap == 0) return PARLEY_EINVAL;
  int64_t deadline = mono_ms() + timeout_ms;
  unsigned char hdr[4];
  int r = read_full(fd, hdr, 4, deadline);
  if (r < 0) return r;
  uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
  if (n == 0 || n > PARLEY__CALLTOOL_MAX_MSG) return PARLEY_EPARSE;
  if ((size_t)n >= cap) {
    if (size) *size = n;
    return PARLEY_ENOSPC;
  }
  r = read_full(fd, (unsigned char *)buf, n, deadline);
  if (r < 0) return r;
  buf[n] = '\0';
  if (memchr(buf, '\0', n)) return PARLEY_EPARSE;
  return (int)n;
}

/* ---- SDP files and streams -------------------------------------------------------------------- */

int parley__calltool_write_file(const char *path, const char *text) {
  if (!path || !text) return PARLEY_EINVAL;
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) return PARLEY_EINVAL;
  FILE *f = fopen(tmp, "w");
  if (!f) return PARLEY_EIO;
  size_t n = strlen(text);
  bool ok = fwrite(text, 1, n, f) == n;
  if (ok && (n == 0 || text[n - 1] != '\n')) ok = fputc('\n', f) != EOF;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return PARLEY_EIO;
  }
  return 0;
}

static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_size == b->st_size;
}

int parley__calltool_read_file_wait(const char *path, const struct stat *stale, char *buf, size_t cap,
                                    int timeout_ms, size_t *size) {
  if (!path || !buf || cap < 2) return PARLEY_EINVAL;
  int64_t deadline = mono_ms() + timeout_ms;
  long long last_size = -1;
  for (;;) {
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0 && !(stale && same_file(&st, stale))) {
      if ((unsigned long long)st.st_size >= cap) {
        if (size) *size = (size_t)st.st_size;
        return PARLEY_ENOSPC;
      }
      if (st.st_size == last_size) {
        FILE *f = fopen(path, "r");
        if (!f) return PARLEY_EIO;
        size_t n = fread(buf, 1, cap - 1, f);
        bool err = ferror(f);
        fclose(f);
        if (err) return PARLEY_EIO;
        buf[n] = '\0';
        if (n == (size_t)last_size && buf[n - 1] == '\n') return (int)n;
      }
      last_size = st.st_size;
    }
    if (mono_ms() >= deadline) return PARLEY_ETIMEDOUT;
    nap_ms(50); /* polling a file: the writer may be another process with no way to notify us */
  }
}

int parley__calltool_read_stream(FILE *in, char *buf, size_t cap, size_t *size) {
  if (!in || !buf || cap < 2) return PARLEY_EINVAL;
  size_t len = 0;
  bool over = false; /* past cap: read on to the end of the description, to say how long it is */
  char line[2048];
  buf[0] = '\0';
  while (fgets(line, sizeof line, in)) {
    bool blank = line[0] == '\n' || (line[0] == '\r' && line[1] == '\n');
    if (blank) {
      if (len > 0) break;
      continue;
    }
    size_t n = strlen(line);
    if (len + n + 1 > cap) over = true;
    if (!over) memcpy(buf + len, line, n + 1);
    len += n;
  }
  if (over) {
    buf[0] = '\0';
    if (size) *size = len;
    return PARLEY_ENOSPC;
  }
  return len > 0 ? (int)len : PARLEY_EIO;
}

/* ---- Timeline ---------------------------------------------------------------------------------- */

int parley__calltool_describe_event(char *what, size_t cap, const parley_event *ev) {
  if (!what || cap == 0) return PARLEY_EINVAL;
  if (!ev) {
    what[0] = '\0';
    return 0;
  }
  const char *kind = parley_event_kind_name(ev->kind);
  switch (ev->kind) {
  case PARLEY_EVENT_ICE_STATE_CHANGED:
    snprintf(what, cap, "ice %s", parley_ice_state_name(ev->ice_state));
    break;
  case PARLEY_EVENT_PEER_STATE_CHANGED:
    snprintf(what, cap, "peer %s", parley_peer_state_name(ev->peer_state));
    break;
  case PARLEY_EVENT_SIGNALING_STATE_CHANGED:
    snprintf(what, cap, "signaling %s", parley_signaling_state_name(ev->signaling_state));
    break;
  case PARLEY_EVENT_TRACK_STARTED:
    snprintf(what, cap, "%s (ssrc %08x)", kind, (unsigned)ev->ssrc);
    break;
  case PARLEY_EVENT_TRACK_STOPPED:
    snprintf(what, cap, "%s (%s)", kind, parley_stop_reason_name(ev->reason));
    break;
  case PARLEY_EVENT_INTERRUPTED:
  case PARLEY_EVENT_RESUMED:
    snprintf(what, cap, "%s(%s)%s%s", kind, parley_interrupt_code_name(ev->code),
             ev->message && *ev->message ? ": " : "", ev->message ? ev->message : "");
    break;
  case PARLEY_EVENT_LOCAL_CANDIDATE:
    snprintf(what, cap, "%s %s", kind, ev->candidate ? ev->candidate : "");
    break;
  case PARLEY_EVENT_ICE_CANDIDATE_ERROR:
    snprintf(what, cap, "%s: %s", kind, ev->message ? ev->message : "");
    break;
  default:
    snprintf(what, cap, "%s", kind);
    break;
  }
  size_t n = strlen(what);
  return (int)n;
}

int parley__calltool_format_event(char *buf, size_t cap, int64_t ms, const char *side, const parley_event *ev) {
  if (!buf || cap == 0) return PARLEY_EINVAL;
  if (!ev) {
    buf[0] = '\0';
    return 0;
  }
  char what[192];
  parley__calltool_describe_event(what, sizeof what, ev);
  char line[256]; /* whole, then cut to cap: the caller's buffer may be small */
  int n = snprintf(line, sizeof line, "%7lld ms  %-2.20s %s", (long long)ms, side ? side : "", what);
  if (n < 0) return PARLEY_EINVAL;
  size_t len = strlen(line) < cap - 1 ? strlen(line) : cap - 1;
  memcpy(buf, line, len);
  buf[len] = '\0';
  return (int)len;
}

/* ---- ICE restart fragments (WHIP) ------------------------------------------------------------------ */

bool parley__calltool_sdp_attr(const char *text, const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, "a=", 2) != 0 || strncmp(l + 2, name, n) != 0 || l[2 + n] != ':') continue;
    size_t len = strcspn(l + 3 + n, "\r\n");
    if (len == 0 || len >= cap) return false;
    memcpy(out, l + 3 + n, len);
    out[len] = '\0';
    return true;
  }
  return false;
}

static bool is_candidate_line(const char *l) {
  return strncmp(l, "a=candidate:", 12) == 0 || strncmp(l, "a=end-of-candidates", 19) == 0;
}

/* Appends text's a=candidate / a=end-of-candidates lines to out at *n, each ending in CRLF. */
static void put_candidates(const char *text, char *out, size_t cap, size_t *n) {
  for (const char *l = text; *l && *n < cap;) {
    size_t len = strcspn(l, "\r\n");
    if (is_candidate_line(l)) *n += (size_t)snprintf(out + *n, cap - *n, "%.*s\r\n", (int)len, l);
    l += len;
    while (*l == '\r' || *l == '\n') l++;
  }
}

int parley__calltool_ice_frag(const char *sdp, char *out, size_t cap) {
  if (!sdp || !out || cap == 0) return PARLEY_EINVAL;
  char ufrag[257], pwd[257], mid[64] = "0";
  if (!parley__calltool_sdp_attr(sdp, "ice-ufrag", ufrag, sizeof ufrag) ||
      !parley__calltool_sdp_attr(sdp, "ice-pwd", pwd, sizeof pwd))
    return PARLEY_EPARSE;
  (void)parley__calltool_sdp_attr(sdp, "mid", mid, sizeof mid);
  size_t n = (size_t)snprintf(out, cap, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:%s\r\n",
                              ufrag, pwd, mid);
  if (n < cap) put_candidates(sdp, out, cap, &n);
  return n < cap ? (int)n : PARLEY_ENOSPC;
}

int parley__calltool_sdp_restart(const char *sdp, const char *frag, char *out, size_t cap) {
  if (!sdp || !frag || !out || cap == 0) return PARLEY_EINVAL;
  char ufrag[257], pwd[257];
  if (!parley__calltool_sdp_attr(frag, "ice-ufrag", ufrag, sizeof ufrag) ||
      !parley__calltool_sdp_attr(frag, "ice-pwd", pwd, sizeof pwd))
    return PARLEY_EPARSE;
  size_t n = 0;
  bool in_audio = false, placed = false;
  out[0] = '\0';
  for (const char *l = sdp; *l && n < cap;) {
    size_t len = strcspn(l, "\n");
    size_t next = len + (l[len] == '\n');
    if (strncmp(l, "m=", 2) == 0) { /* the audio section ends: its new candidates go before the next one */
      if (in_audio && !placed) {
        put_candidates(frag, out, cap, &n);
        placed = true;
      }
      in_audio = strncmp(l, "m=audio ", 8) == 0;
    }
    if (n >= cap) break;
    if (strncmp(l, "a=ice-ufrag:", 12) == 0) n += (size_t)snprintf(out + n, cap - n, "a=ice-ufrag:%s\r\n", ufrag);
    else if (strncmp(l, "a=ice-pwd:", 10) == 0) n += (size_t)snprintf(out + n, cap - n, "a=ice-pwd:%s\r\n", pwd);
    else if (!is_candidate_line(l)) n += (size_t)snprintf(out + n, cap - n, "%.*s\n", (int)len, l);
    l += next;
  }
  if (in_audio && !placed && n < cap) put_candidates(frag, out, cap, &n);
  return n < cap ? (int)n : PARLEY_ENOSPC;
}
