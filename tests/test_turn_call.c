/* test_turn_call.c: calls through a real TURN server (coturn, Debian's turnserver) between two engines
 * that cannot reach each other (the network of turn_helpers.h): audio both ways through the relay, the
 * relayed pair selected, the relay killed mid-call (both sides interrupted), the relay-only policy (no
 * host address offered, both ends relayed, both allocations released at hang-up), A's path to the relay
 * cut and restored (network-lost, then resumed, on both sides), TURN over TCP with UDP to the server
 * blocked, and A's address replaced mid-call on a relay-only call (A allocates again from the new one
 * and trickles it; media resumes without an offer). Also the ICE server URLs the engine config takes
 * and refuses (no network). TURN over TLS: test_turn_tls.c. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "parley/parley.h"
#include "turn_helpers.h"

/* Host candidates on both sides, but only the relay connects: speech both ways through coturn; then
 * coturn is killed and both sides report the interruption. */
Test(turn_call, speech_both_ways_through_the_relay_then_the_relay_dies, .timeout = 240) {
  rig g;
  tr_rig_up(&g, PARLEY_ICE_POLICY_ALL, UDP_ONLY, NULL, NULL);
  static char offer[8192];
  int64_t t0 = tr_mono_us();
  tr_connect_sides(&g.n, &g.a, &g.b, offer, sizeof offer, 10000);
  cr_log_info("both sides hear the other %.0f ms after the offer", (tr_mono_us() - t0) / 1000.0);
  cr_expect(strstr(offer, "typ host") != NULL, "the offer has host candidates");
  cr_expect(tr_has_line(&g.a, "typ relay raddr 10.0.0.2") && tr_has_line(&g.b, "typ relay raddr 10.0.1.2"),
            "each side trickled a relayed candidate with its mapped address as raddr");
  cr_expect(tr_has_line(&g.a, "end-of-candidates") && tr_has_line(&g.b, "end-of-candidates"));
  /* A and B cannot reach each other: at least one end of the pair is a relayed candidate. */
  parley_candidate_type ta = tr_local_type(&g.a), tb = tr_local_type(&g.b);
  cr_log_info("selected pair: A's local %d, B's local %d (4 = relay)", ta, tb);
  cr_expect(ta == PARLEY_CANDIDATE_RELAY || tb == PARLEY_CANDIDATE_RELAY);
  tr_sleep_ms(7500); /* the 6 s clips, through */
  parley_call_stats sa;
  cr_assert_eq(parley_call_get_stats(g.a.call, &sa), 0);
  cr_expect_gt(sa.rtt_ms, 0, "RTCP round trips through the relay");

  tr_kill_relay(&g.n, &g.a, &g.b);
  tr_end_call(&g.a, &g.b, true);
  tr_net_down(&g.n);
}

/* The relay policy: no host candidate or address in the descriptions, both ends of the pair relayed,
 * media both ways; hang-up releases both allocations (coturn logs each Refresh with lifetime 0). */
Test(turn_call, relay_only_policy, .timeout = 240) {
  rig g;
  tr_rig_up(&g, PARLEY_ICE_POLICY_RELAY, UDP_ONLY, NULL, NULL);
  static char offer[8192];
  tr_connect_sides(&g.n, &g.a, &g.b, offer, sizeof offer, 10000);
  cr_expect(strstr(offer, "typ host") == NULL && strstr(offer, "10.0.0.2") == NULL, "no host address offered");
  cr_expect(!tr_has_line(&g.a, "typ host") && !tr_has_line(&g.b, "typ host"));
  cr_expect(!tr_has_line(&g.a, "10.0.0.2") && !tr_has_line(&g.b, "10.0.1.2"), "raddr hides the host address");
  cr_expect(tr_has_line(&g.a, "typ relay raddr 0.0.0.0 rport 0") && tr_has_line(&g.b, "typ relay raddr 0.0.0.0 rport 0"));
  cr_expect_eq(tr_local_type(&g.a), PARLEY_CANDIDATE_RELAY);
  cr_expect_eq(tr_local_type(&g.b), PARLEY_CANDIDATE_RELAY);
  tr_sleep_ms(2000); /* media both ways (the speech is correlated in the other tests) */
  for (int i = 0; i < 2; i++) {
    side *s = i ? &g.b : &g.a;
    parley_call_stats st;
    cr_assert_eq(parley_call_get_stats(s->call, &st), 0);
    cr_expect_gt(st.packets_received, 50, "%s: %llu packets through the relays", s->name,
                 (unsigned long long)st.packets_received);
    cr_expect(st.audio_level_received >= 0 && st.audio_level_received < 60, "%s hears speech: -%d dBov", s->name,
              st.audio_level_received);
  }
  tr_end_call(&g.a, &g.b, false);
  /* coturn (--verbose) logs each Refresh: "session ...: refreshed, ..., lifetime=0". */
  tr_sleep_ms(300);
  int count = tr_log_count(&g.n, "refreshed, .*lifetime=0");
  cr_expect_eq(count, 2, "coturn saw both allocations released (Refresh with lifetime 0): %d", count);
  tr_net_down(&g.n);
}

/* A's path to the relay is cut (nft drops what A and R exchange, no ICMP) while both are relay-only:
 * both sides report network-lost as they would on a direct path, and resume once it is restored. */
Test(turn_call, path_to_the_relay_cut_then_restored, .timeout = 240) {
  rig g;
  tr_relay_only_call(&g);
  int64_t cut = tr_mono_us();
  /* Dropped where each direction arrives (R's input from A, A's input from R): a drop on output would
   * fail the sender's send (EPERM), which a network never does (coturn ends the session on it). */
  tr_enter(g.n.a);
  tr_sh("nft add table inet cut && nft add chain inet cut in '{ type filter hook input priority 0; }' && "
     "nft add rule inet cut in ip saddr 10.0.0.1 drop");
  tr_enter(g.n.r);
  tr_sh("nft add chain inet parley cut_in '{ type filter hook input priority 0; }' && "
     "nft add rule inet parley cut_in ip saddr 10.0.0.2 drop");
  for (int i = 0; i < 500 && (tr_get(&g.a, &g.a.interrupts) == 0 || tr_get(&g.b, &g.b.interrupts) == 0); i++) tr_sleep_ms(10);
  cr_assert(tr_get(&g.a, &g.a.interrupts) > 0 && tr_get(&g.b, &g.b.interrupts) > 0, "both interrupted within 5 s");
  cr_expect_eq(g.a.code, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_expect_eq(g.b.code, PARLEY_INTERRUPT_NETWORK_LOST);
  cr_log_info("path to the relay cut: A interrupted after %.0f ms, B after %.0f ms", (g.a.interrupted_at - cut) / 1000.0,
              (g.b.interrupted_at - cut) / 1000.0);
  tr_sleep_ms(1000);
  int64_t restored = tr_mono_us();
  tr_enter(g.n.a);
  tr_sh("nft flush chain inet cut in");
  tr_enter(g.n.r);
  tr_sh("nft flush chain inet parley cut_in");
  for (int i = 0; i < 500 && (tr_get(&g.a, &g.a.resumes) == 0 || tr_get(&g.b, &g.b.resumes) == 0); i++) tr_sleep_ms(10);
  cr_expect(tr_get(&g.a, &g.a.resumes) > 0 && tr_get(&g.b, &g.b.resumes) > 0, "both resumed within 5 s");
  cr_log_info("restored: A resumed after %.0f ms, B after %.0f ms", (g.a.resumed_at - restored) / 1000.0,
              (g.b.resumed_at - restored) / 1000.0);
  tr_end_call(&g.a, &g.b, false);
  tr_net_down(&g.n);
}

/* UDP to the server is blocked (nft, in R): each side is given the server over UDP and over TCP, and
 * only TCP (STUN and ChannelData framed on the stream) gets an allocation; relay-only calls carry
 * speech both ways over the two TCP connections; killing coturn resets them and interrupts both. */
Test(turn_call, turn_over_tcp_when_udp_is_blocked, .timeout = 240) {
  static const char *const both[] = {TURN_URL, "turn:10.0.0.1:3478?transport=tcp", NULL};
  rig g;
  tr_rig_up(&g, PARLEY_ICE_POLICY_RELAY, both,
         "nft add chain inet parley in '{ type filter hook input priority 0; }' && "
         "nft add rule inet parley in udp dport 3478 counter drop", NULL);
  tr_talk_relayed(&g, "TCP");
  unsigned long dropped = tr_shell_count("nft list chain inet parley in | grep -o 'packets [0-9]*' | grep -o '[0-9]*'");
  cr_log_info("UDP datagrams to the server dropped: %lu", dropped);
  cr_expect_gt(dropped, 0, "the UDP allocations were tried, and blocked");
  cr_expect_eq(tr_count_lines(&g.a, "typ relay"), 1, "A's one relayed candidate is the TCP allocation's");
  tr_kill_relay(&g.n, &g.a, &g.b);
  tr_end_call(&g.a, &g.b, true);
  tr_net_down(&g.n);
}

static uint64_t packets_in(side *s) {
  parley_call_stats st;
  cr_assert_eq(parley_call_get_stats(s->call, &st), 0);
  return st.packets_received;
}

/* After A's address changed at `moved` (mono_us): waits (at most 10 s, trickling) until each side
 * receives again and A has trickled `relays` relayed candidates in all; checks that media flows on
 * both ways, and logs how long it took (how: what changed). */
static void media_back(rig *g, int64_t moved, int relays, const char *how) {
  uint64_t a0 = packets_in(&g->a), b0 = packets_in(&g->b);
  int64_t a_back = 0, b_back = 0;
  for (int i = 0; i < 1000 && !(a_back && b_back); i++) {
    tr_forward(&g->a, &g->b);
    tr_forward(&g->b, &g->a);
    tr_sleep_ms(10);
    /* Back when packets come again after the gap (those in flight at the move land within 100 ms). */
    bool settled = tr_mono_us() - moved > 100000 && tr_count_lines(&g->a, "typ relay") == relays;
    uint64_t a1 = packets_in(&g->a), b1 = packets_in(&g->b);
    if (!a_back && settled && a1 > a0) a_back = tr_mono_us();
    if (!b_back && settled && b1 > b0) b_back = tr_mono_us();
    a0 = a1;
    b0 = b1;
  }
  cr_expect(a_back && b_back, "%s: media resumed both ways within 10 s", how);
  cr_expect_eq(tr_count_lines(&g->a, "typ relay"), relays, "%s: A trickled a relayed candidate from its new address", how);
  tr_sleep_ms(1000);
  cr_expect_gt(packets_in(&g->a), a0 + 25, "%s: A hears B on the new path", how);
  cr_expect_gt(packets_in(&g->b), b0 + 25, "%s: B hears A on the new path", how);
  cr_log_info("%s: media back at A after %.0f ms, at B after %.0f ms; interrupted: A %d, B %d", how,
              a_back ? (a_back - moved) / 1000.0 : -1.0, b_back ? (b_back - moved) / 1000.0 : -1.0,
              tr_get(&g->a, &g->a.interrupts), tr_get(&g->b, &g->b.interrupts));
}

/* Handover on a relay-only call: A's address (the base of its allocation) is replaced by another on
 * the same link, first with the new one there before the old one goes, then with none for a moment
 * (the old one deleted, the new one added 0.3 s later). Each time A allocates again from its new
 * address and trickles the new relayed candidate; media resumes both ways through coturn without an
 * offer. */
Test(turn_call, relay_only_call_reallocates_after_a_handover, .timeout = 240) {
  rig g;
  tr_relay_only_call(&g);
  tr_enter(g.n.a);
  tr_sh("sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1 && ip addr add 10.0.0.3/24 dev eth0");
  tr_sleep_ms(300);
  int64_t moved = tr_mono_us();
  tr_sh("ip addr del 10.0.0.2/24 dev eth0");
  tr_enter(g.n.r);
  media_back(&g, moved, 2, "address replaced");
  tr_enter(g.n.a);
  moved = tr_mono_us();
  tr_sh("ip addr del 10.0.0.3/24 dev eth0"); /* the default route goes with the link's last address */
  tr_sleep_ms(300);
  tr_sh("ip addr add 10.0.0.4/24 dev eth0 && ip route replace default via 10.0.0.1 dev eth0");
  tr_enter(g.n.r);
  media_back(&g, moved, 3, "no address for 0.3 s, then another");
  cr_expect_eq(tr_local_type(&g.a), PARLEY_CANDIDATE_RELAY);
  cr_expect_eq(tr_log_count(&g.n, "session .*: new"), 4, "coturn made A's two new allocations");
  tr_end_call(&g.a, &g.b, false);
  tr_net_down(&g.n);
}

/* parley_engine_new with one ICE server (and a policy): its return code; the engine is freed. */
static int try_server(const char *url, const char *user, const char *pass, parley_ice_transport_policy policy) {
  parley_ice_server srv = {url, user, pass};
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.ice_servers = url ? &srv : NULL;
  cfg.ice_server_count = url ? 1 : 0;
  cfg.ice_transport_policy = policy;
  parley_engine *e = NULL;
  int r = parley_engine_new(&cfg, &e);
  parley_engine_free(e);
  return r;
}

/* The URL forms of RFC 7064 / 7065 the config takes, and the ones it refuses with the code it says. */
Test(turn_call, ice_server_urls) {
  const parley_ice_transport_policy all = PARLEY_ICE_POLICY_ALL, relay = PARLEY_ICE_POLICY_RELAY;
  cr_expect_eq(try_server("stun:192.0.2.1", NULL, NULL, all), 0);
  cr_expect_eq(try_server("stun:[2001:db8::1]:3479", NULL, NULL, all), 0);
  cr_expect_eq(try_server("turn:192.0.2.1:3478?transport=udp", USER, PASS, relay), 0);
  cr_expect_eq(try_server("TURN:192.0.2.1?transport=tcp", USER, PASS, all), 0);
  cr_expect_eq(try_server("turn:192.0.2.1", NULL, PASS, all), PARLEY_EINVAL, "no username");
  cr_expect_eq(try_server("turn:192.0.2.1", USER, "", all), PARLEY_EINVAL, "empty credential");
  cr_expect_eq(try_server("turns:192.0.2.1", USER, PASS, all), 0, "TLS, the system's CAs");
  cr_expect_eq(try_server("TURNS:[2001:db8::1]:443?transport=tcp", USER, PASS, relay), 0);
  cr_expect_eq(try_server("turns:192.0.2.1?transport=udp", USER, PASS, all), PARLEY_ENOTSUP, "DTLS");
  cr_expect_eq(try_server("turns:192.0.2.1", USER, NULL, all), PARLEY_EINVAL, "no credential");
  cr_expect_eq(try_server("stuns:192.0.2.1", NULL, NULL, all), PARLEY_ENOTSUP, "TLS");
  cr_expect_eq(try_server("http://192.0.2.1", NULL, NULL, all), PARLEY_EINVAL);
  cr_expect_eq(try_server("turn:192.0.2.1:0", USER, PASS, all), PARLEY_EINVAL, "port 0");
  cr_expect_eq(try_server("turn:192.0.2.1:65536", USER, PASS, all), PARLEY_EINVAL);
  cr_expect_eq(try_server("turn:192.0.2.1?transport=sctp", USER, PASS, all), PARLEY_EINVAL);
  cr_expect_eq(try_server("stun:192.0.2.1?transport=udp", NULL, NULL, all), PARLEY_EINVAL, "stun: has no query");
  cr_expect_eq(try_server("turn:[2001:db8::1", USER, PASS, all), PARLEY_EINVAL, "unclosed bracket");
  cr_expect_eq(try_server("stun:192.0.2.1", NULL, NULL, relay), PARLEY_EINVAL, "relay policy without TURN");
  cr_expect_eq(try_server(NULL, NULL, NULL, (parley_ice_transport_policy)7), PARLEY_EINVAL);
  parley_ice_server five[5];
  for (int i = 0; i < 5; i++) five[i] = (parley_ice_server){"turn:192.0.2.1", USER, PASS};
  parley_engine_config cfg;
  parley_engine_config_init(&cfg);
  cfg.ice_servers = five;
  cfg.ice_server_count = 5;
  parley_engine *e = NULL;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL, "more than PARLEY_ENGINE_MAX_TURN_SERVERS");
  cfg.ice_servers = NULL;
  cfg.ice_server_count = 1;
  cr_expect_eq(parley_engine_new(&cfg, &e), PARLEY_EINVAL, "a count without servers");
  cr_expect_null(e);
}
