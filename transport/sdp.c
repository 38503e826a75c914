/* sdp.c: SDP parser and writer for parley's audio stream (see sdp.h; the offer/answer step is sdp_answer.c).
 *
 * Owns nothing: it reads and fills caller structs, so any thread may call it, one call per struct at a
 * time. No allocation, locks or logging. The parser works on (pointer, length) spans and never needs
 * the input to be NUL-terminated; every copy into the model's fixed arrays is bounds-checked and an
 * overflow is a parse error naming the line, not a truncation.
 */
#include "transport/sdp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parley/parley.h"
#include "transport/sdp_span.h"
#include "transport/sdp_webrtc.h"

/* ---- model helpers ---- */

void parley__sdp_media_init(parley__sdp_media *m) {
  memset(m, 0, sizeof *m);
  m->opus_pt = -1;
  m->opus_useinbandfec = -1;
  m->opus_usedtx = -1;
  m->dir = PARLEY__SDP_SENDRECV;
}

void parley__sdp_init(parley__sdp *s) {
  memset(s, 0, sizeof *s);
  strcpy(s->origin_user, "-");
  strcpy(s->session_name, "-");
}

static parley__sdp_proto proto_of(span s) {
  if (span_eq(s, "RTP/AVP")) return PARLEY__SDP_PROTO_RTP_AVP;
  if (span_eq(s, "RTP/SAVP")) return PARLEY__SDP_PROTO_RTP_SAVP;
  if (span_eq(s, "RTP/SAVPF")) return PARLEY__SDP_PROTO_RTP_SAVPF;
  if (span_eq(s, "UDP/TLS/RTP/SAVPF")) return PARLEY__SDP_PROTO_UDP_TLS_RTP_SAVPF;
  return PARLEY__SDP_PROTO_OTHER;
}

static bool proto_is_rtp(span s) {
  /* Every RTP profile name contains "RTP/" (RTP/AVP, UDP/TLS/RTP/SAVPF, TCP/RTP/AVP, ...). */
  for (size_t i = 0; i + 4 <= s.n; i++)
    if (memcmp(s.p + i, "RTP/", 4) == 0) return true;
  return false;
}

static const char *dir_name(parley__sdp_dir d) {
  switch (d) {
  case PARLEY__SDP_SENDONLY: return "sendonly";
  case PARLEY__SDP_RECVONLY: return "recvonly";
  case PARLEY__SDP_INACTIVE: return "inactive";
  default: return "sendrecv";
  }
}

static const char *cand_type_name(parley__sdp_cand_type t) {
  switch (t) {
  case PARLEY__SDP_CAND_SRFLX: return "srflx";
  case PARLEY__SDP_CAND_PRFLX: return "prflx";
  case PARLEY__SDP_CAND_RELAY: return "relay";
  default: return "host";
  }
}

static parley__sdp_format *find_format(parley__sdp_media *m, span id) {
  for (size_t i = 0; i < m->format_count; i++)
    if (span_eq(id, m->formats[i].id)) return &m->formats[i];
  return NULL;
}

/* Read useinbandfec / usedtx out of an fmtp parameter list "a=1;b=2". */
static void read_opus_fmtp(parley__sdp_media *m, const char *fmtp) {
  span rest = {fmtp, strlen(fmtp)};
  while (rest.n) {
    span param = split_at(rest, ';', &rest);
    span value;
    span key = trim(split_at(param, '=', &value));
    value = trim(value);
    int flag = span_eq(value, "1") ? 1 : span_eq(value, "0") ? 0 : -1;
    if (flag < 0) continue;
    if (span_ieq(key, "useinbandfec")) m->opus_useinbandfec = flag;
    if (span_ieq(key, "usedtx")) m->opus_usedtx = flag;
  }
}

/* Derive the opus fields of m from its formats: the first opus/48000/2 in m= order wins. RFC 7587
 * requires the /2, but GStreamer's webrtcbin leaves it out when its caps have no encoding-params (the
 * stream is the same: Opus signals its channels in each packet), so an omitted count is accepted too;
 * an explicit other count is not Opus as RFC 7587 defines it. */
void parley__sdp_resolve_opus(parley__sdp_media *m) {
  m->opus_pt = -1;
  m->opus_useinbandfec = -1;
  m->opus_usedtx = -1;
  for (size_t i = 0; i < m->format_count; i++) {
    const parley__sdp_format *f = &m->formats[i];
    span enc = {f->encoding, strlen(f->encoding)};
    if (f->pt >= 0 && span_ieq(enc, "opus") && f->clock_hz == 48000 && (f->channels == 2 || f->channels == 0)) {
      m->opus_pt = f->pt;
      read_opus_fmtp(m, f->fmtp);
      return;
    }
  }
}

/* ---- parser ---- */

typedef struct parser {
  parley__sdp *out;
  parley__sdp_error *err;
  int line;
  parley__sdp_media *media; /* NULL at session level */
  /* Session-level values inherited by m-lines lacking their own. */
  char ice_ufrag[PARLEY__SDP_ICE_MAX];
  char ice_pwd[PARLEY__SDP_ICE_MAX];
  bool has_dir;
  parley__sdp_dir dir;
  char fingerprint[PARLEY__SDP_FINGERPRINT_MAX];
  parley__sdp_setup setup;
  /* Per m-line: which inheritable values it set itself. */
  bool media_has_dir[PARLEY__SDP_MAX_MEDIA];
  bool seen_o, seen_s;
} parser;

static int fail(parser *ps, const char *fmt, ...) {
  if (ps->err) {
    ps->err->line = ps->line;
    int n = snprintf(ps->err->msg, sizeof ps->err->msg, "line %d: ", ps->line);
    if (n < 0 || (size_t)n >= sizeof ps->err->msg) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err->msg + n, sizeof ps->err->msg - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return PARLEY_EPARSE;
}

static int parse_origin(parser *ps, span v) {
  span user, id, ver, nettype, addrtype, addr;
  if (!next_token(&v, &user) || !next_token(&v, &id) || !next_token(&v, &ver) ||
      !next_token(&v, &nettype) || !next_token(&v, &addrtype) || !next_token(&v, &addr))
    return fail(ps, "o= needs 6 fields");
  if (!parse_u64(id, UINT64_MAX, &ps->out->sess_id)) return fail(ps, "bad session id in o=");
  if (!parse_u64(ver, UINT64_MAX, &ps->out->sess_version)) return fail(ps, "bad session version in o=");
  if (!copy_span(ps->out->origin_user, sizeof ps->out->origin_user, user) ||
      !copy_span(ps->out->origin_addr, sizeof ps->out->origin_addr, addr))
    return fail(ps, "o= field too long");
  ps->seen_o = true;
  return 0;
}

static int parse_connection(parser *ps, span v, char *dst, size_t cap) {
  span nettype, addrtype, addr;
  if (!next_token(&v, &nettype) || !next_token(&v, &addrtype) || !next_token(&v, &addr))
    return fail(ps, "c= needs 3 fields");
  if (!span_eq(nettype, "IN")) return fail(ps, "c= network type is not IN");
  if (!span_eq(addrtype, "IP4") && !span_eq(addrtype, "IP6")) return fail(ps, "c= address type");
  span ttl;
  addr = split_at(addr, '/', &ttl); /* multicast TTL / count: not ours */
  if (addr.n == 0 || !copy_span(dst, cap, addr)) return fail(ps, "bad c= address");
  return 0;
}

static int parse_media_line(parser *ps, span v) {
  if (!ps->seen_o || !ps->seen_s) return fail(ps, "m= before o= and s=");
  if (ps->out->media_count >= PARLEY__SDP_MAX_MEDIA) return fail(ps, "too many m= lines");
  parley__sdp_media *m = &ps->out->media[ps->out->media_count];
  parley__sdp_media_init(m);
  span type, port, proto, fmt;
  if (!next_token(&v, &type) || !next_token(&v, &port) || !next_token(&v, &proto))
    return fail(ps, "m= needs media, port, proto and formats");
  if (!copy_span(m->type, sizeof m->type, type)) return fail(ps, "m= media type too long");
  span count;
  port = split_at(port, '/', &count);
  uint32_t n_ports;
  if (!parse_port(port, &m->port)) return fail(ps, "bad port in m=");
  if (count.p != port.p + port.n && !parse_u32(count, 65535, &n_ports))
    return fail(ps, "bad port count in m=");
  if (!copy_span(m->proto_text, sizeof m->proto_text, proto)) return fail(ps, "m= proto too long");
  m->proto = proto_of(proto);
  bool rtp = proto_is_rtp(proto);
  while (next_token(&v, &fmt)) {
    if (m->format_count >= PARLEY__SDP_MAX_FORMATS) return fail(ps, "too many formats in m=");
    parley__sdp_format *f = &m->formats[m->format_count];
    memset(f, 0, sizeof *f);
    if (!copy_span(f->id, sizeof f->id, fmt)) return fail(ps, "m= format too long");
    f->pt = -1;
    if (rtp) {
      uint32_t pt;
      if (!parse_u32(fmt, 127, &pt)) return fail(ps, "bad payload type in m=");
      f->pt = (int)pt;
    }
    m->format_count++;
  }
  if (m->format_count == 0) return fail(ps, "m= has no formats");
  ps->out->media_count++;
  ps->media = m;
  return 0;
}

static int parse_rtpmap(parser *ps, span v) {
  span pt, desc;
  if (!next_token(&v, &pt) || !next_token(&v, &desc)) return fail(ps, "rtpmap needs <pt> <encoding>");
  parley__sdp_format *f = find_format(ps->media, pt);
  if (!f) return 0; /* not offered on the m= line: ignore */
  span rate, params;
  span name = split_at(desc, '/', &rate);
  rate = split_at(rate, '/', &params);
  if (name.n == 0 || !copy_span(f->encoding, sizeof f->encoding, name))
    return fail(ps, "bad rtpmap encoding name");
  if (!parse_u32(rate, UINT32_MAX, &f->clock_hz) || f->clock_hz == 0)
    return fail(ps, "bad rtpmap clock rate");
  f->channels = 0;
  if (params.p != rate.p + rate.n && !parse_u32(params, 255, &f->channels))
    return fail(ps, "bad rtpmap channel count");
  return 0;
}

static int parse_fmtp(parser *ps, span v) {
  span fmt;
  if (!next_token(&v, &fmt)) return fail(ps, "fmtp needs a format");
  parley__sdp_format *f = find_format(ps->media, fmt);
  if (!f) return 0;
  if (!copy_span(f->fmtp, sizeof f->fmtp, trim(v))) return fail(ps, "fmtp parameters too long");
  return 0;
}

static bool valid_foundation(span s) {
  if (s.n == 0 || s.n > 32) return false;
  for (size_t i = 0; i < s.n; i++) {
    char c = s.p[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

/* The fields of a candidate attribute's value (RFC 8839, 5.1). NULL, or what is wrong. */
static const char *candidate_fields(span v, parley__sdp_candidate *out) {
  parley__sdp_candidate c;
  memset(&c, 0, sizeof c);
  span found, comp, transport, prio, addr, port, typ, type;
  if (!next_token(&v, &found) || !next_token(&v, &comp) || !next_token(&v, &transport) ||
      !next_token(&v, &prio) || !next_token(&v, &addr) || !next_token(&v, &port) ||
      !next_token(&v, &typ) || !next_token(&v, &type))
    return "candidate needs 8 fields";
  if (!valid_foundation(found)) return "bad candidate foundation";
  memcpy(c.foundation, found.p, found.n);
  uint32_t component;
  if (!parse_u32(comp, 256, &component) || component == 0) return "bad candidate component";
  c.component = (uint16_t)component;
  if (!copy_span(c.transport, sizeof c.transport, transport)) return "bad candidate transport";
  if (!parse_u32(prio, UINT32_MAX, &c.priority)) return "bad candidate priority";
  if (!copy_span(c.addr, sizeof c.addr, addr)) return "bad candidate address";
  if (!parse_port(port, &c.port)) return "bad candidate port";
  if (!span_eq(typ, "typ")) return "candidate lacks typ";
  if (span_eq(type, "host"))
    c.type = PARLEY__SDP_CAND_HOST;
  else if (span_eq(type, "srflx"))
    c.type = PARLEY__SDP_CAND_SRFLX;
  else if (span_eq(type, "prflx"))
    c.type = PARLEY__SDP_CAND_PRFLX;
  else if (span_eq(type, "relay"))
    c.type = PARLEY__SDP_CAND_RELAY;
  else
    return "unknown candidate type";
  /* raddr/rport, then extension name/value pairs (generation, network-id, ufrag, tcptype, ...). */
  span name, value;
  bool has_rport = false;
  while (next_token(&v, &name)) {
    if (!next_token(&v, &value)) return "candidate extension without value";
    if (span_eq(name, "raddr")) {
      if (!copy_span(c.raddr, sizeof c.raddr, value)) return "bad candidate raddr";
      c.has_raddr = true;
    } else if (span_eq(name, "rport")) {
      if (!parse_port(value, &c.rport)) return "bad candidate rport";
      has_rport = true;
    }
  }
  if (has_rport && !c.has_raddr) return "candidate rport without raddr";
  *out = c;
  return NULL;
}

static int parse_candidate(parser *ps, span v) {
  parley__sdp_media *m = ps->media;
  if (m->candidate_count >= PARLEY__SDP_MAX_CANDIDATES) return fail(ps, "too many candidates");
  const char *bad = candidate_fields(v, &m->candidates[m->candidate_count]);
  if (bad) return fail(ps, "%s", bad);
  m->candidate_count++;
  return 0;
}

int parley__sdp_candidate_parse(const char *text, size_t len, parley__sdp_candidate *out) {
  if (!text || !out) return PARLEY_EINVAL;
  size_t n = 0;
  while (n < len && text[n]) n++;
  span v = {text, n};
  if (v.n >= 2 && strncmp(v.p, "a=", 2) == 0) v.p += 2, v.n -= 2;
  while (v.n && (v.p[v.n - 1] == '\n' || v.p[v.n - 1] == '\r')) v.n--;
  if (v.n < 10 || strncmp(v.p, "candidate:", 10) != 0) return PARLEY_EPARSE;
  v.p += 10, v.n -= 10;
  return candidate_fields(v, out) ? PARLEY_EPARSE : 0;
}

int parley__sdp_candidate_format(const parley__sdp_candidate *c, char *buf, size_t cap) {
  if (!c || !buf || cap == 0) return PARLEY_EINVAL;
  int n = snprintf(buf, cap, "candidate:%s %u %s %u %s %u typ %s", c->foundation, (unsigned)c->component,
                   c->transport, (unsigned)c->priority, c->addr, (unsigned)c->port, cand_type_name(c->type));
  if (n >= 0 && (size_t)n < cap && c->has_raddr)
    n += snprintf(buf + n, cap - (size_t)n, " raddr %s rport %u", c->raddr, (unsigned)c->rport);
  if (n < 0) return PARLEY_EINVAL;
  return (size_t)n < cap ? n : PARLEY_ENOSPC;
}

static int parse_crypto(parser *ps, span v) {
  parley__sdp_media *m = ps->media;
  if (m->crypto_count >= PARLEY__SDP_MAX_CRYPTO) return fail(ps, "too many crypto lines");
  parley__sdp_crypto *c = &m->crypto[m->crypto_count];
  memset(c, 0, sizeof *c);
  span tag, suite, key;
  if (!next_token(&v, &tag) || !next_token(&v, &suite) || !next_token(&v, &key))
    return fail(ps, "crypto needs tag, suite and key params");
  if (tag.n > 9 || !parse_u32(tag, 999999999, &c->tag)) return fail(ps, "bad crypto tag");
  if (!copy_span(c->suite, sizeof c->suite, suite)) return fail(ps, "crypto suite too long");
  if (!copy_span(c->key_params, sizeof c->key_params, key)) return fail(ps, "crypto key params too long");
  if (!copy_span(c->session_params, sizeof c->session_params, trim(v)))
    return fail(ps, "crypto session params too long");
  m->crypto_count++;
  return 0;
}

static int parse_ice_credential(parser *ps, span v, char *dst, size_t cap, const char *what) {
  v = trim(v);
  if (v.n == 0 || !copy_span(dst, cap, v)) return fail(ps, "bad %s", what);
  for (size_t i = 0; i < v.n; i++)
    if (is_space(v.p[i])) return fail(ps, "bad %s", what);
  return 0;
}

static const char *const setup_names[] = {"", "actpass", "active", "passive", "holdconn"};

/* "<hash-func> <fingerprint>": two tokens; transport/dtls.h reads them. */
static int parse_fingerprint(parser *ps, span v, char *dst) {
  span rest = trim(v), alg, fp;
  if (dst[0]) return 0; /* several: the first one counts */
  if (!next_token(&rest, &alg) || !next_token(&rest, &fp) || rest.n != 0 ||
      alg.n + 1 + fp.n >= PARLEY__SDP_FINGERPRINT_MAX || memchr(alg.p, '\0', alg.n) || memchr(fp.p, '\0', fp.n))
    return fail(ps, "bad fingerprint"); /* a NUL would cut the value short when it is written back */
  memcpy(dst, alg.p, alg.n);
  dst[alg.n] = ' ';
  memcpy(dst + alg.n + 1, fp.p, fp.n);
  dst[alg.n + 1 + fp.n] = '\0';
  return 0;
}

static int parse_setup(parser *ps, span v, parley__sdp_setup *dst) {
  for (int i = PARLEY__SDP_SETUP_ACTPASS; i <= PARLEY__SDP_SETUP_HOLDCONN; i++)
    if (span_eq(trim(v), setup_names[i])) {
      *dst = (parley__sdp_setup)i;
      return 0;
    }
  return fail(ps, "bad setup (actpass, active, passive or holdconn)");
}

static int parse_attribute(parser *ps, span v) {
  span value;
  span name = split_at(v, ':', &value);
  bool has_value = value.p != name.p + name.n;
  if (name.n == 0) return fail(ps, "empty attribute name");
  parley__sdp_media *m = ps->media;

  int dir = -1;
  if (span_eq(name, "sendrecv")) dir = PARLEY__SDP_SENDRECV;
  if (span_eq(name, "sendonly")) dir = PARLEY__SDP_SENDONLY;
  if (span_eq(name, "recvonly")) dir = PARLEY__SDP_RECVONLY;
  if (span_eq(name, "inactive")) dir = PARLEY__SDP_INACTIVE;
  if (dir >= 0) {
    if (m) {
      m->dir = (parley__sdp_dir)dir;
      ps->media_has_dir[m - ps->out->media] = true;
    } else {
      ps->dir = (parley__sdp_dir)dir;
      ps->has_dir = true;
    }
    return 0;
  }
  if (span_eq(name, "ice-ufrag"))
    return parse_ice_credential(ps, value, m ? m->ice_ufrag : ps->ice_ufrag, PARLEY__SDP_ICE_MAX,
                                "ice-ufrag");
  if (span_eq(name, "ice-pwd"))
    return parse_ice_credential(ps, value, m ? m->ice_pwd : ps->ice_pwd, PARLEY__SDP_ICE_MAX, "ice-pwd");
  if (span_eq(name, "fingerprint")) return parse_fingerprint(ps, value, m ? m->fingerprint : ps->fingerprint);
  if (span_eq(name, "setup")) return parse_setup(ps, value, m ? &m->setup : &ps->setup);
  const char *why = "";
  int webrtc = parley__sdp_webrtc_attr(ps->out, m, name, value, has_value, &why);
  if (webrtc) return webrtc < 0 ? fail(ps, "%s", why) : 0;
  if (!m) return 0; /* the rest are media-level only */
  if (span_eq(name, "rtcp-mux")) {
    m->rtcp_mux = true;
    return 0;
  }
  if (span_eq(name, "end-of-candidates")) {
    m->end_of_candidates = true;
    return 0;
  }
  if (!has_value) return 0;
  if (span_eq(name, "rtpmap")) return parse_rtpmap(ps, value);
  if (span_eq(name, "fmtp")) return parse_fmtp(ps, value);
  if (span_eq(name, "candidate")) return parse_candidate(ps, value);
  if (span_eq(name, "crypto")) return parse_crypto(ps, value);
  if (span_eq(name, "maxptime")) {
    if (!parse_u32(trim(value), 10000, &m->maxptime_ms) || m->maxptime_ms == 0) return fail(ps, "bad maxptime");
    return 0;
  }
  if (span_eq(name, "ptime")) {
    if (!parse_u32(trim(value), 10000, &m->ptime_ms) || m->ptime_ms == 0) return fail(ps, "bad ptime");
    return 0;
  }
  if (span_eq(name, "mid")) {
    span mid = trim(value), tok;
    if (!next_token(&mid, &tok) || mid.n != 0 || !copy_span(m->mid, sizeof m->mid, tok))
      return fail(ps, "bad mid");
    return 0;
  }
  return 0;
}

static int parse_line(parser *ps, span line) {
  if (line.n < 2 || line.p[1] != '=' || !(line.p[0] >= 'a' && line.p[0] <= 'z'))
    return fail(ps, "expected <letter>=<value>");
  char type = line.p[0];
  span v = {line.p + 2, line.n - 2};
  if (ps->line == 1) {
    if (type != 'v') return fail(ps, "first line must be v=0");
    if (!span_eq(trim(v), "0")) return fail(ps, "unsupported version in v=");
    return 0;
  }
  switch (type) {
  case 'v': return fail(ps, "repeated v=");
  case 'o': return ps->media ? fail(ps, "o= inside a media section") : parse_origin(ps, v);
  case 's':
    if (ps->media) return fail(ps, "s= inside a media section");
    ps->seen_s = true;
    if (!copy_span(ps->out->session_name, sizeof ps->out->session_name, trim(v)))
      strcpy(ps->out->session_name, "-"); /* free text we never use: a long one is not an error */
    return 0;
  case 'c':
    if (ps->media) return parse_connection(ps, v, ps->media->conn_addr, sizeof ps->media->conn_addr);
    return parse_connection(ps, v, ps->out->conn_addr, sizeof ps->out->conn_addr);
  case 'm': return parse_media_line(ps, v);
  case 'a': return parse_attribute(ps, v);
  default: return 0; /* i u e p b t r z k and anything else: not needed */
  }
}

int parley__sdp_parse(const char *text, size_t len, parley__sdp *out, parley__sdp_error *err) {
  if (!out || (!text && len)) return PARLEY_EINVAL;
  parley__sdp_init(out);
  if (err) {
    err->line = 0;
    err->msg[0] = '\0';
  }
  parser ps;
  memset(&ps, 0, sizeof ps);
  ps.out = out;
  ps.err = err;

  span rest = {text, len};
  bool any = false;
  while (rest.n) {
    span line = split_at(rest, '\n', &rest);
    ps.line++;
    if (line.n && line.p[line.n - 1] == '\r') line.n--;
    if (line.n == 0) {
      if (ps.line == 1) return fail(&ps, "first line must be v=0");
      continue; /* blank lines (e.g. a trailing one) are tolerated */
    }
    any = true;
    /* A CR anywhere but the line end would let a value smuggle a line break into what we write. */
    int rc = memchr(line.p, '\r', line.n) ? fail(&ps, "stray CR inside a line") : parse_line(&ps, line);
    if (rc < 0) {
      parley__sdp_init(out);
      return rc;
    }
  }
  if (!any) {
    ps.line = 1;
    return fail(&ps, "empty description: no v=");
  }
  if (!ps.seen_o || !ps.seen_s) {
    ps.line++;
    int rc = fail(&ps, "missing %s", !ps.seen_o ? "o=" : "s=");
    parley__sdp_init(out);
    return rc;
  }
  for (size_t i = 0; i < out->media_count; i++) {
    parley__sdp_media *m = &out->media[i];
    if (m->ice_ufrag[0] == '\0') strcpy(m->ice_ufrag, ps.ice_ufrag);
    if (m->ice_pwd[0] == '\0') strcpy(m->ice_pwd, ps.ice_pwd);
    if (!ps.media_has_dir[i] && ps.has_dir) m->dir = ps.dir;
    if (m->fingerprint[0] == '\0') strcpy(m->fingerprint, ps.fingerprint);
    if (m->setup == PARLEY__SDP_SETUP_NONE) m->setup = ps.setup;
    parley__sdp_resolve_opus(m);
  }
  parley__sdp_webrtc_inherit(out);
  return 0;
}

/* ---- writer ---- */

typedef struct writer {
  char *buf;
  size_t cap;
  size_t len;
  int err;
} writer;

static void put(writer *w, const char *fmt, ...) {
  if (w->err) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
  va_end(ap);
  if (n < 0) {
    w->err = PARLEY_EINVAL;
  } else if ((size_t)n >= w->cap - w->len) {
    w->err = PARLEY_ENOSPC;
    w->buf[w->len] = '\0';
  } else {
    w->len += (size_t)n;
  }
}

static const char *addr_type(const char *addr) { return strchr(addr, ':') ? "IP6" : "IP4"; }

static bool media_writable(const parley__sdp_media *m) {
  if (!is_token(m->type) || !is_token(m->proto_text) || m->format_count == 0 ||
      m->format_count > PARLEY__SDP_MAX_FORMATS || m->candidate_count > PARLEY__SDP_MAX_CANDIDATES ||
      m->crypto_count > PARLEY__SDP_MAX_CRYPTO)
    return false;
  if ((m->conn_addr[0] && !is_token(m->conn_addr)) || (m->mid[0] && !is_token(m->mid)) ||
      (m->ice_ufrag[0] && !is_token(m->ice_ufrag)) || (m->ice_pwd[0] && !is_token(m->ice_pwd)) ||
      !is_text(m->fingerprint) || (unsigned)m->setup > PARLEY__SDP_SETUP_HOLDCONN)
    return false;
  for (size_t i = 0; i < m->format_count; i++) {
    const parley__sdp_format *f = &m->formats[i];
    if (!is_token(f->id) || (f->encoding[0] && !is_token(f->encoding)) || !is_text(f->fmtp))
      return false;
  }
  for (size_t i = 0; i < m->candidate_count; i++) {
    const parley__sdp_candidate *c = &m->candidates[i];
    if (!is_token(c->foundation) || !is_token(c->transport) || !is_token(c->addr) ||
        (c->has_raddr && !is_token(c->raddr)))
      return false;
  }
  for (size_t i = 0; i < m->crypto_count; i++) {
    const parley__sdp_crypto *c = &m->crypto[i];
    if (!is_token(c->suite) || !is_token(c->key_params) || !is_text(c->session_params)) return false;
  }
  return true;
}

static void write_media(writer *w, const parley__sdp_media *m) {
  put(w, "m=%s %u %s", m->type, (unsigned)m->port, m->proto_text);
  for (size_t i = 0; i < m->format_count; i++) put(w, " %s", m->formats[i].id);
  put(w, "\r\n");
  if (m->conn_addr[0]) put(w, "c=IN %s %s\r\n", addr_type(m->conn_addr), m->conn_addr);
  if (m->mid[0]) put(w, "a=mid:%s\r\n", m->mid);
  if (m->ice_ufrag[0]) put(w, "a=ice-ufrag:%s\r\n", m->ice_ufrag);
  if (m->ice_pwd[0]) put(w, "a=ice-pwd:%s\r\n", m->ice_pwd);
  if (m->fingerprint[0]) put(w, "a=fingerprint:%s\r\n", m->fingerprint);
  if (m->setup) put(w, "a=setup:%s\r\n", setup_names[m->setup]);
  for (size_t i = 0; i < m->format_count; i++) {
    const parley__sdp_format *f = &m->formats[i];
    if (f->encoding[0]) {
      put(w, "a=rtpmap:%s %s/%u", f->id, f->encoding, (unsigned)f->clock_hz);
      if (f->channels) put(w, "/%u", (unsigned)f->channels);
      put(w, "\r\n");
    }
    if (f->fmtp[0]) put(w, "a=fmtp:%s %s\r\n", f->id, f->fmtp);
  }
  if (m->ptime_ms) put(w, "a=ptime:%u\r\n", (unsigned)m->ptime_ms);
  if (m->maxptime_ms) put(w, "a=maxptime:%u\r\n", (unsigned)m->maxptime_ms);
  for (size_t i = 0; i < m->crypto_count; i++) {
    const parley__sdp_crypto *c = &m->crypto[i];
    put(w, "a=crypto:%u %s %s", (unsigned)c->tag, c->suite, c->key_params);
    if (c->session_params[0]) put(w, " %s", c->session_params);
    put(w, "\r\n");
  }
  for (size_t i = 0; i < m->candidate_count; i++) {
    char line[PARLEY__SDP_CANDIDATE_LINE_MAX];
    if (parley__sdp_candidate_format(&m->candidates[i], line, sizeof line) < 0) w->err = PARLEY_EINVAL;
    else put(w, "a=%s\r\n", line);
  }
  if (m->end_of_candidates) put(w, "a=end-of-candidates\r\n");
  if (m->rtcp_mux) put(w, "a=rtcp-mux\r\n");
  char webrtc[1024];
  if (parley__sdp_webrtc_write_media(m, webrtc, sizeof webrtc) >= (int)sizeof webrtc) w->err = PARLEY_ENOSPC;
  put(w, "%s", webrtc);
  put(w, "a=%s\r\n", dir_name(m->dir));
}

int parley__sdp_write(const parley__sdp *s, char *buf, size_t cap) {
  if (!s || !buf) return PARLEY_EINVAL;
  if (cap == 0) return PARLEY_ENOSPC;
  buf[0] = '\0';
  if (!is_token(s->origin_user) || !is_token(s->origin_addr) || !is_text(s->session_name) ||
      (s->conn_addr[0] && !is_token(s->conn_addr)) || s->media_count > PARLEY__SDP_MAX_MEDIA)
    return PARLEY_EINVAL;
  for (size_t i = 0; i < s->media_count; i++)
    if (!media_writable(&s->media[i])) return PARLEY_EINVAL;
  if (!parley__sdp_webrtc_writable(s)) return PARLEY_EINVAL;
  writer w = {buf, cap, 0, 0};
  put(&w, "v=0\r\n");
  put(&w, "o=%s %llu %llu IN %s %s\r\n", s->origin_user, (unsigned long long)s->sess_id,
      (unsigned long long)s->sess_version, addr_type(s->origin_addr), s->origin_addr);
  put(&w, "s=%s\r\n", s->session_name[0] ? s->session_name : "-");
  if (s->conn_addr[0]) put(&w, "c=IN %s %s\r\n", addr_type(s->conn_addr), s->conn_addr);
  put(&w, "t=0 0\r\n");
  char webrtc[1024];
  if (parley__sdp_webrtc_write_session(s, webrtc, sizeof webrtc) >= (int)sizeof webrtc) w.err = PARLEY_ENOSPC;
  put(&w, "%s", webrtc);
  for (size_t i = 0; i < s->media_count; i++) write_media(&w, &s->media[i]);
  if (w.err) return w.err;
  if (w.len > INT32_MAX) return PARLEY_ERANGE;
  return (int)w.len;
}
