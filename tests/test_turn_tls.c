/* test_turn_tls.c: TURN over TLS (turns:) against coturn with a certificate from a CA the test makes
 * with the openssl CLI, in the network of turn_helpers.h: relay-only speech both ways with UDP and
 * plain TCP to the server blocked; a server whose certificate the engine does not trust (the app is
 * told at once, ICE_CANDIDATE_ERROR, and gathering ends); the CA files parley_engine_new takes and
 * refuses. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/parley.h"
#include "turn_helpers.h"

#define BLOCK_UDP_AND_PLAIN_TCP                                                                          \
  "nft add chain inet parley in '{ type filter hook input priority 0; }' && "                           \
  "nft add rule inet parley in udp dport 3478 counter drop && nft add rule inet parley in tcp dport 3478 drop"

/* TURN over TLS: coturn's certificate (for 10.0.0.1) comes from a CA the engines are given in
 * turn_ca_file; UDP and plain TCP to the server are blocked, so only turns: gets an allocation.
 * Relay-only calls carry speech both ways through the two TLS connections; coturn logs TLS sessions;
 * killing coturn interrupts both sides. */
Test(turn_tls, speech_both_ways_when_udp_is_blocked, .timeout = 240) {
  static const char *const urls[] = {TURN_URL, "turns:10.0.0.1:5349", NULL};
  rig g;
  tr_rig_up(&g, PARLEY_ICE_POLICY_RELAY, urls, BLOCK_UDP_AND_PLAIN_TCP, "ca.pem");
  tr_talk_relayed(&g, "TLS");
  /* coturn logs each allocation: "session ...: new, realm=..., cipher=..., method=TLSv1.2". */
  int tls_sessions = tr_log_count(&g.n, "session .*: new, .*method=TLSv1");
  cr_log_info("allocations coturn made over TLS: %d", tls_sessions);
  cr_expect_eq(tls_sessions, 2, "coturn served both allocations over TLS (see %s/log.txt)", g.n.dir);
  tr_kill_relay(&g.n, &g.a, &g.b);
  tr_end_call(&g.a, &g.b, true);
  tr_net_down(&g.n);
}

/* A turns: server whose certificate does not chain to the CA the engine trusts: no relayed candidate,
 * gathering ends, and the app is told why (ICE_CANDIDATE_ERROR) within seconds, not left waiting. */
Test(turn_tls, server_with_an_untrusted_certificate, .timeout = 120) {
  static const char *const urls[] = {"turns:10.0.0.1:5349", NULL};
  rig g;
  tr_rig_up(&g, PARLEY_ICE_POLICY_RELAY, urls, NULL, "other-ca.pem");
  static char offer[8192];
  tr_enter(g.n.a);
  cr_assert_gt(parley_call_create_offer(g.a.call, offer, sizeof offer), 0);
  tr_enter(g.n.r);
  int64_t t0 = tr_mono_us();
  for (int i = 0; i < 500 && (tr_get(&g.a, &g.a.cand_errors) == 0 || !tr_has_line(&g.a, "end-of-candidates")); i++)
    tr_sleep_ms(10);
  pthread_mutex_lock(&g.a.mu);
  cr_log_info("refused after %.0f ms: %s", (tr_mono_us() - t0) / 1000.0, g.a.cand_error);
  cr_expect_eq(g.a.cand_errors, 1, "one candidate error");
  cr_expect(strstr(g.a.cand_error, "turns:10.0.0.1:5349: certificate verify failed") == g.a.cand_error, "%s",
            g.a.cand_error);
  pthread_mutex_unlock(&g.a.mu);
  cr_expect(tr_has_line(&g.a, "end-of-candidates"), "gathering ends");
  cr_expect(!tr_has_line(&g.a, "typ relay"), "no relayed candidate");
  cr_expect_eq(tr_log_count(&g.n, "session .*: new"), 0, "coturn allocated nothing");
  (void)parley_call_hangup(g.a.call);
  (void)parley_call_hangup(g.b.call);
  tr_side_free(&g.a);
  tr_side_free(&g.b);
  unlink(g.a.out);
  unlink(g.b.out);
  tr_net_down(&g.n);
}

/* turn_ca_file: a file of PEM certificates, checked at parley_engine_new: a CA file loads; a missing
 * file, a key, a file of text are PARLEY_EPARSE. (No network.) */
Test(turn_tls, ca_files) {
  parley_engine *e = NULL;
  char dir[] = "/tmp/parley-turnca.XXXXXX", path[96];
  cr_assert_not_null(mkdtemp(dir));
  tr_make_certs(dir);
  parley_ice_server tls = {"turns:192.0.2.1", USER, PASS};
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.ice_servers = &tls;
  cfg.ice_server_count = 1;
  static const struct {
    const char *file;
    int want;
  } cas[] = {{"ca.pem", 0}, {"missing.pem", PARLEY_EPARSE}, {"ca.key", PARLEY_EPARSE}, {"san.ext", PARLEY_EPARSE}};
  for (size_t i = 0; i < sizeof cas / sizeof cas[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, cas[i].file);
    cfg.turn_ca_file = path;
    int r = parley_engine_new(&cfg, &e);
    cr_expect_eq(r, cas[i].want, "turn_ca_file %s: %s", cas[i].file, parley_strerror(r));
    parley_engine_free(e);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  tr_sh(cmd);
}
