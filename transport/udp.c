/* udp.c: non-blocking UDP sockets (see udp.h). Owns nothing beyond each socket's descriptor.
 * Network thread only; every call is a system call (never on the audio path).
 *
 * ICMP errors: Linux reports them on unconnected UDP sockets only with IP_RECVERR / IPV6_RECVERR. With
 * those set, the error is also queued with the original destination, which recv reads from the error
 * queue so the caller learns *which* peer is unreachable. Each ICMP error is reported once, by recv: a send
 * the kernel fails with a pending error (about an earlier datagram) is sent again. */
#define _GNU_SOURCE
#include "transport/udp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "parley/parley.h"

int parley__udp_open(parley__udp *s, const parley__netaddr *bind_addr) {
  if (!s) return PARLEY_EINVAL;
  s->fd = -1;
  memset(&s->local, 0, sizeof s->local);
  struct sockaddr_storage ss;
  int sl = parley__netaddr_to_sockaddr(bind_addr, &ss);
  if (sl < 0) return PARLEY_EINVAL;
  bool v6 = bind_addr->family == PARLEY__NETADDR_V6;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return PARLEY_ENETWORK;
  int on = 1;
  if (v6) {
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
  } else {
    (void)setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  }
  struct sockaddr_storage bound;
  socklen_t bl = sizeof bound;
  if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 ||
      getsockname(fd, (struct sockaddr *)&bound, &bl) != 0 ||
      parley__netaddr_from_sockaddr(&s->local, &bound) != 0) {
    close(fd);
    return PARLEY_ENETWORK;
  }
  s->fd = fd;
  return 0;
}

void parley__udp_close(parley__udp *s) {
  if (!s || s->fd < 0) return;
  close(s->fd);
  s->fd = -1;
}

static int fail(parley__udp_error *err, int e) {
  if (err) {
    memset(err, 0, sizeof *err);
    err->sys_errno = e;
  }
  return PARLEY_ENETWORK;
}

/* Linux fails the next send with a pending ICMP error (sk_err) and leaves the error queued: that send
 * never left. True when the error queue holds an entry (POLLERR without sk_err, which the send took). */
static bool error_queued(const parley__udp *s) {
  struct pollfd pf = {.fd = s->fd, .events = 0};
  return poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR);
}

int parley__udp_send(parley__udp *s, const parley__netaddr *dst, const void *buf, size_t len,
                     parley__udp_error *err) {
  if (!s || s->fd < 0 || !dst || (!buf && len > 0)) return PARLEY_EINVAL;
  if (dst->family != s->local.family) return PARLEY_EINVAL;
  struct sockaddr_storage ss;
  int sl = parley__netaddr_to_sockaddr(dst, &ss);
  if (sl < 0) return PARLEY_EINVAL;
  bool resent = false;
  for (int tries = 0; tries < 4; tries++) {
    ssize_t n = sendto(s->fd, buf, len, 0, (struct sockaddr *)&ss, (socklen_t)sl);
    if (n >= 0) return (int)n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return PARLEY_EAGAIN;
    if (!resent && error_queued(s)) {
      resent = true; /* the failure was an earlier datagram's ICMP error: recv reports it, with its peer */
      continue;
    }
    int e = errno;
    fail(err, e);
    if (err) err->peer = *dst;
    return PARLEY_ENETWORK;
  }
  return PARLEY_EAGAIN;
}

/* Pops one entry from the socket's error queue: the errno and the destination it concerns. */
static int read_error_queue(parley__udp *s, parley__udp_error *err) {
  char data[64];
  char ctrl[512];
  struct sockaddr_storage dst;
  struct iovec iov = {data, sizeof data};
  struct msghdr msg = {.msg_name = &dst, .msg_namelen = sizeof dst, .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = ctrl, .msg_controllen = sizeof ctrl};
  memset(&dst, 0, sizeof dst);
  if (recvmsg(s->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return -1;
  int e = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
        (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
      struct sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(c), sizeof ee);
      e = (int)ee.ee_errno;
    }
  }
  if (err) {
    memset(err, 0, sizeof *err);
    err->sys_errno = e;
    if (msg.msg_namelen > 0) (void)parley__netaddr_from_sockaddr(&err->peer, &dst);
  }
  return 0;
}

int parley__udp_recv(parley__udp *s, void *buf, size_t cap, parley__netaddr *src,
                     parley__udp_error *err) {
  if (!s || s->fd < 0 || !buf || !src) return PARLEY_EINVAL;
  for (int tries = 0; tries < 4; tries++) {
    struct sockaddr_storage ss;
    struct iovec iov = {buf, cap};
    struct msghdr msg = {.msg_name = &ss, .msg_namelen = sizeof ss, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(s->fd, &msg, MSG_DONTWAIT);
    if (n >= 0) {
      if (parley__netaddr_from_sockaddr(src, &ss) != 0) continue; /* not IP: ignore */
      if (msg.msg_flags & MSG_TRUNC) return PARLEY_ENOSPC;
      return (int)n;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      /* An error may be queued without the pending flag (already consumed by a send). */
      if (read_error_queue(s, err) == 0) return PARLEY_ENETWORK;
      return PARLEY_EAGAIN;
    }
    int e = errno;
    if (read_error_queue(s, err) == 0) {
      if (err && err->sys_errno == 0) err->sys_errno = e;
      return PARLEY_ENETWORK;
    }
    return fail(err, e);
  }
  return PARLEY_EAGAIN;
}

int parley__udp_poll(parley__udp *const *socks, size_t n, int timeout_ms, uint32_t *ready) {
  if (!socks || !ready || n == 0 || n > 32 || timeout_ms < 0) return PARLEY_EINVAL;
  if (timeout_ms > 10000) timeout_ms = 10000;
  struct pollfd pf[32];
  for (size_t i = 0; i < n; i++) {
    if (!socks[i] || socks[i]->fd < 0) return PARLEY_EINVAL;
    pf[i] = (struct pollfd){.fd = socks[i]->fd, .events = POLLIN};
  }
  *ready = 0;
  int r;
  do {
    r = poll(pf, (nfds_t)n, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return PARLEY_ENETWORK;
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    if (pf[i].revents & (POLLIN | POLLERR)) {
      *ready |= 1u << i;
      count++;
    }
  }
  return count;
}
