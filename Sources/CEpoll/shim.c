#define _GNU_SOURCE
#include "CEpoll.h"

#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

_Static_assert(CEPOLL_IN == EPOLLIN, "EPOLLIN");
_Static_assert(CEPOLL_OUT == EPOLLOUT, "EPOLLOUT");
_Static_assert(CEPOLL_ERR == EPOLLERR, "EPOLLERR");
_Static_assert(CEPOLL_HUP == EPOLLHUP, "EPOLLHUP");
_Static_assert(CEPOLL_RDHUP == EPOLLRDHUP, "EPOLLRDHUP");
_Static_assert(CEPOLL_CLOEXEC == EPOLL_CLOEXEC, "EPOLL_CLOEXEC");
_Static_assert(CEPOLL_SOCK_STREAM == SOCK_STREAM, "SOCK_STREAM");
_Static_assert(CEPOLL_SOCK_NONBLOCK == SOCK_NONBLOCK, "SOCK_NONBLOCK");
_Static_assert(CEPOLL_SOCK_CLOEXEC == SOCK_CLOEXEC, "SOCK_CLOEXEC");
_Static_assert(CEPOLL_EFD_NONBLOCK == EFD_NONBLOCK, "EFD_NONBLOCK");
_Static_assert(CEPOLL_EFD_CLOEXEC == EFD_CLOEXEC, "EFD_CLOEXEC");
_Static_assert(CEPOLL_MSG_NOSIGNAL == MSG_NOSIGNAL, "MSG_NOSIGNAL");
_Static_assert(CEPOLL_SO_REUSEPORT == SO_REUSEPORT, "SO_REUSEPORT");
_Static_assert(CEPOLL_SIGNALFD_RECORD == sizeof(struct signalfd_siginfo), "signalfd_siginfo size");
_Static_assert(offsetof(struct signalfd_siginfo, ssi_signo) == 0, "ssi_signo first");
#ifdef IP_BIND_ADDRESS_NO_PORT
_Static_assert(CEPOLL_IP_BIND_ADDRESS_NO_PORT == IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT");
#endif

int cepoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event = { .events = events, .data = { .u64 = data } };
    return epoll_ctl(epfd, op, fd, &event);
}

int cepoll_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void cepoll_ignore_sigpipe(void) {
    signal(SIGPIPE, SIG_IGN);
}

static void cepoll_fill_sigset(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int index = 0; index < count; index++) sigaddset(set, signals[index]);
}

void *cepoll_mremap(void *old, size_t old_size, size_t new_size) {
    void *moved = mremap(old, old_size, new_size, MREMAP_MAYMOVE);
    return moved == MAP_FAILED ? NULL : moved;
}

int cepoll_block_signals(const int *signals, int count) {
    sigset_t set;
    cepoll_fill_sigset(&set, signals, count);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int cepoll_unblock_signals(const int *signals, int count) {
    sigset_t set;
    cepoll_fill_sigset(&set, signals, count);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int cepoll_signalfd(const int *signals, int count) {
    sigset_t set;
    cepoll_fill_sigset(&set, signals, count);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int cepoll_nofile_limits(uint64_t *soft, uint64_t *hard) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    *soft = (uint64_t)limit.rlim_cur;
    *hard = (uint64_t)limit.rlim_max;
    return 0;
}

int cepoll_set_nofile_soft(uint64_t soft) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
    limit.rlim_cur = (rlim_t)soft;
    return setrlimit(RLIMIT_NOFILE, &limit);
}

int cepoll_unsent_bytes(int fd) {
    int value = 0;
    return ioctl(fd, SIOCOUTQ, &value) < 0 ? -1 : value;
}

int cepoll_malloc_trim(void) { return malloc_trim(0); }
