/* turn_helpers.h: what the coturn call tests (test_turn_call.c, test_turn_tls.c) share: the network,
 * coturn, and two endpoints that reach each other only through it.
 *
 * The network, made by each test and gone with its process: the test process moves into a new network
 * namespace R (unshare), which holds coturn on 10.0.0.1 (3478 for UDP and TCP, 5349 for TLS when asked)
 * and two veth links to namespaces A (10.0.0.2) and B (10.0.1.2); R forwards between A and B only as
 * far as nft lets it, and it drops everything forwarded, so A and B reach coturn and the relayed
 * addresses and never each other. Each engine is made while the calling thread is in its namespace
 * (setns), so that its threads live there (the network thread watches the addresses, for handover),
 * and so are its sockets. coturn dies with the test process (PR_SET_PDEATHSIG). Tests skip without
 * root, namespaces, nft or coturn. Test threads only; the event listeners run on the engines' dispatch
 * threads and write a side's fields under its mutex (tr_get reads them). */
#ifndef PARLEY_TESTS_TURN_HELPERS_H
#define PARLEY_TESTS_TURN_HELPERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "parley/parley.h"

#define USER "alice"
#define PASS "wonderland"
#define TURN_URL "turn:10.0.0.1:3478?transport=udp"
#define UDP_ONLY ((const char *const[]){TURN_URL, NULL})
#define SPEECH_A PARLEY_TEST_DATA "/speech_a_48k.wav"
#define SPEECH_B PARLEY_TEST_DATA "/speech_b_48k.wav"

typedef struct net {
  int r, a, b; /* namespace fds */
  pid_t turn;
  char dir[64]; /* coturn's files (log.txt; with TLS ca.pem, other-ca.pem, server.pem) */
} net;

#define MAX_LINES 16
typedef struct side {
  const char *name;
  parley_engine *eng;
  parley_call *call;
  char out[64];
  pthread_mutex_t mu; /* the fields below: the dispatch thread writes them */
  char lines[MAX_LINES][256]; /* what it trickled */
  int nlines, forwarded;
  int tracks, interrupts, resumes, closed, cand_errors;
  char cand_error[256]; /* the first ICE_CANDIDATE_ERROR's message */
  int64_t interrupted_at, resumed_at;
  parley_interrupt_code code;
} side;

typedef struct rig {
  net n;
  side a, b;
} rig;

int64_t tr_mono_us(void);
void tr_sleep_ms(int ms);
void tr_sh(const char *cmd);  /* runs a shell command, asserting it succeeded */
void tr_enter(int ns_fd);     /* the calling thread joins the namespace */
/* In dir: a CA (ca.pem, ca.key), coturn's certificate from it for 10.0.0.1 (server.pem, server.key), and
 * a second CA that signed nothing (other-ca.pem), made with the openssl CLI. */
void tr_make_certs(const char *dir);

/* The network and coturn (with TLS when ca is given), the shell command block in R if any, and two
 * engines, A talking SPEECH_A and B SPEECH_B, with the policy, the TURN servers urls (NULL-terminated,
 * at most 2) and, when ca is not NULL, turn_ca_file = that file in coturn's directory. Skips the test
 * without the tools. */
void tr_rig_up(rig *g, parley_ice_transport_policy policy, const char *const *urls, const char *block,
               const char *ca);
void tr_net_down(net *n);
/* tr_rig_up with the relay policy over UDP, connected, a second in. */
void tr_relay_only_call(rig *g);
/* Connects (relay-only: both ends relayed) and lets the 6 s clips through; over: for the log. */
void tr_talk_relayed(rig *g, const char *over);

/* Offer from A (in its namespace), answer from B, trickling until both hear the other (asserted within
 * wait_ms). */
void tr_connect_sides(net *n, side *a, side *b, char *offer, size_t cap, int wait_ms);
void tr_forward(side *from, side *to); /* trickles what from gathered since last time to the other */
int tr_get(side *s, const int *field);  /* a field of s, read under its mutex */
int tr_count_lines(side *s, const char *needle); /* lines s trickled that hold needle */
bool tr_has_line(side *s, const char *needle);
parley_candidate_type tr_local_type(side *s); /* the selected pair's local candidate type */
/* Kills coturn mid-call: both sides must report the interruption (within 5 s; the times are logged). */
void tr_kill_relay(net *n, side *a, side *b);
/* Hangs up, frees, and with speech checks that each side recorded the other's speech. */
void tr_end_call(side *a, side *b, bool speech);
void tr_side_free(side *s);

unsigned long tr_shell_count(const char *cmd); /* the first number cmd prints, 0 if none */
int tr_log_count(net *n, const char *re);        /* lines of coturn's log matching the ERE re */

#endif
