/* network_change.c: the engine watching its host's addresses. Owns the rtnetlink socket (engine
 * creation opens it, the network thread reads it: parley__netwatch_service) and the app's hint
 * parley_engine_network_changed; both tell every call, which gathers again (call_handover.c). The
 * messages are parsed sans-IO by transport/netwatch.c. Not on the audio thread; system calls. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/engine_internal.h"
#include "transport/netwatch.h"

int parley__netwatch_open(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void tell_calls(parley_engine *e, int64_t now_us) {
  for (int i = 0; i < PARLEY_ENGINE_MAX_CALLS; i++)
    if (e->calls[i]) parley__call_network_changed(e->calls[i], now_us);
}

void parley__netwatch_service(parley_engine *e, int64_t now_us) {
  if (e->netwatch_fd < 0) return;
  bool changed = false;
  uint8_t buf[8192];
  /* Drain everything queued first, so that a delete and an add seen together make one regather. */
  for (int k = 0; k < 64; k++) {
    ssize_t n = recv(e->netwatch_fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == ENOBUFS) changed = true; /* the kernel dropped notifications: assume a change */
      if (errno == EINTR || errno == ENOBUFS) continue;
      break;
    }
    parley__netwatch_change ch[16];
    int m = parley__netwatch_parse(buf, (size_t)n, ch, sizeof ch / sizeof ch[0]);
    if (m > 0) changed = true; /* also a NEWADDR whose DAD just finished: now bindable */
  }
  if (changed) tell_calls(e, now_us);
}

int parley_engine_network_changed(parley_engine *e) {
  if (!e) return PARLEY_EINVAL;
  pthread_mutex_lock(&e->lock);
  tell_calls(e, parley__clock_now(&e->clock));
  pthread_mutex_unlock(&e->lock);
  parley__engine_wake(e);
  return 0;
}
