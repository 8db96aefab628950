// CEpoll: the few pieces of Linux's socket and epoll API that Swift cannot import well.
// Everything else (epoll_wait, accept4, read, sendmsg, ...) Swift calls directly through Glibc.
#ifndef CEPOLL_H
#define CEPOLL_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

// glibc declares these as enum members (or macros over enum members), which Swift imports as
// awkward enum types; plain unsigned literals import as UInt32 constants. shim.c checks each value.
#define CEPOLL_IN      0x001u
#define CEPOLL_OUT     0x004u
#define CEPOLL_ERR     0x008u
#define CEPOLL_HUP     0x010u
#define CEPOLL_RDHUP   0x2000u
#define CEPOLL_CLOEXEC 02000000

#define CEPOLL_SOCK_STREAM   1
#define CEPOLL_SOCK_NONBLOCK 04000
#define CEPOLL_SOCK_CLOEXEC  02000000
#define CEPOLL_EFD_NONBLOCK  04000
#define CEPOLL_EFD_CLOEXEC   02000000
#define CEPOLL_MSG_NOSIGNAL  0x4000
// Missing from old headers; the kernel has had it since 4.2.
#define CEPOLL_IP_BIND_ADDRESS_NO_PORT 24
#define CEPOLL_SO_REUSEPORT 15

/// struct epoll_event is packed on x86-64 (12 bytes, data at offset 4); only C knows its stride.
static inline struct epoll_event *cepoll_events_allocate(int count) {
    return (struct epoll_event *)calloc((size_t)count, sizeof(struct epoll_event));
}
static inline uint32_t cepoll_event_mask(const struct epoll_event *events, int index) {
    return events[index].events;
}
static inline uint64_t cepoll_event_data(const struct epoll_event *events, int index) {
    return events[index].data.u64;
}

/// epoll_ctl with the packed event built in C; returns -1 and sets errno on failure.
int cepoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);

/// accept4 is declared only under _GNU_SOURCE, which Swift's Glibc module does not define.
/// Returns a non-blocking, close-on-exec socket, or -1 with errno set.
int cepoll_accept(int fd);

/// SIG_IGN is a cast macro Swift cannot import.
void cepoll_ignore_sigpipe(void);

/// sizeof(struct signalfd_siginfo): one record read from a signalfd; ssi_signo is its first field.
#define CEPOLL_SIGNALFD_RECORD 128

/// <sys/signalfd.h> is not in Swift's Glibc module, and sigset_t is easier to fill in C.
/// mremap(2) with MREMAP_MAYMOVE (variadic in C, so Swift cannot call it): grows an anonymous
/// mapping by moving its page-table entries; NULL on failure (errno set).
void *cepoll_mremap(void *old, size_t old_size, size_t new_size);

/// malloc_trim(0) (declared in <malloc.h>, which the Glibc module does not export): gives the
/// heap's free pages back to the kernel.
int cepoll_malloc_trim(void);

/// Blocks `signals` in the calling thread (pthread_sigmask SIG_BLOCK); returns 0 or an errno value.
int cepoll_block_signals(const int *signals, int count);
/// Unblocks `signals` in the calling thread; returns 0 or an errno value.
int cepoll_unblock_signals(const int *signals, int count);
/// A non-blocking, close-on-exec signalfd for `signals`; -1 with errno set on failure.
int cepoll_signalfd(const int *signals, int count);

/// RLIMIT_NOFILE is an enum member of an anonymous glibc type; these keep it out of Swift.
int cepoll_nofile_limits(uint64_t *soft, uint64_t *hard);
int cepoll_set_nofile_soft(uint64_t soft);

/// ioctl is variadic, which Swift cannot call. Bytes in a socket's send queue not yet acknowledged
/// (SIOCOUTQ): what the kernel holds for it beyond what the loop has queued. -1 with errno on failure.
int cepoll_unsent_bytes(int fd);

#endif
