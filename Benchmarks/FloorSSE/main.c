// The floor for the connection benchmark: the least any SSE server can do on this machine. It speaks
// just enough of the bench contract for `rill load` (GET /sse gets a fixed 200 head; POST /publish
// frames the body once and write()s it to every stream, then answers 204; a heartbeat comment is
// write()n to every stream every --heartbeat seconds; GET /metrics gives counters and the time spent in
// write rounds) and keeps 4 bytes per stream (its fd in an array, plus a 4-byte slot per fd). No HTTP
// parsing beyond the first bytes of a request that arrives in one read: it is a measuring stick, not
// a server. A write round's cost is the kernel's loopback TCP path, which every server pays.
//
// Usage: FloorSSE [--port 8080] [--heartbeat 15]
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char stream_head[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n";
static const char heartbeat[] = ": heartbeat\n\n";

static int *streams;       // fds of the open streams
static int stream_count;
static int *slot_of;       // fd -> index in streams, or -1
static long long events, event_writes, heartbeat_writes, failed_writes;
static double write_seconds;  // time spent in write rounds (events and heartbeats)
static int write_rounds;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void write_all(const char *bytes, size_t length) {
    double start = now_seconds();
    for (int i = 0; i < stream_count; i++) {
        if (write(streams[i], bytes, length) != (ssize_t)length) failed_writes++;
    }
    write_seconds += now_seconds() - start;
    write_rounds++;
}

static void forget(int fd) {
    int index = slot_of[fd];
    if (index >= 0) {
        streams[index] = streams[--stream_count];
        slot_of[streams[index]] = index;
        slot_of[fd] = -1;
    }
    close(fd);
}

static void reply(int fd, const char *status, const char *type, const char *body) {
    char response[2048];
    int length = snprintf(response, sizeof response, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
                          status, type, strlen(body), body);
    if (write(fd, response, (size_t)length) < 0) { /* the client went away; its EOF closes it */ }
}

/// One request, assumed whole in `request` (the bench's requests are small and sent at once).
static void serve(int fd, char *request, ssize_t length) {
    request[length] = 0;
    if (strncmp(request, "GET /sse", 8) == 0) {
        if (write(fd, stream_head, sizeof stream_head - 1) < 0) return;
        slot_of[fd] = stream_count;
        streams[stream_count++] = fd;
    } else if (strncmp(request, "POST /publish", 13) == 0) {
        char *body = strstr(request, "\r\n\r\n");
        body = body ? body + 4 : request + length;
        char frame[4096];
        int size = snprintf(frame, sizeof frame, "id: %lld\ndata: %.*s\n\n", events + 1,
                            (int)(request + length - body), body);
        events++;
        event_writes += stream_count;
        write_all(frame, (size_t)size);
        char headers[128];
        int head = snprintf(headers, sizeof headers, "HTTP/1.1 204 No Content\r\nX-Event-Id: %lld\r\nX-Subscribers: %d\r\n\r\n",
                            events, stream_count);
        if (write(fd, headers, (size_t)head) < 0) { /* as above */ }
    } else if (strncmp(request, "GET /metrics", 12) == 0) {
        char text[1024];
        snprintf(text, sizeof text,
                 "floor_subscribers %d\nfloor_events_total %lld\nfloor_event_writes_total %lld\n"
                 "floor_heartbeats_total %lld\nfloor_failed_writes_total %lld\nfloor_write_rounds_total %d\n"
                 "floor_write_round_seconds_total %.6f\n",
                 stream_count, events, event_writes, heartbeat_writes, failed_writes, write_rounds, write_seconds);
        reply(fd, "200 OK", "text/plain; version=0.0.4", text);
    } else if (strncmp(request, "GET / ", 6) == 0) {
        reply(fd, "200 OK", "text/html; charset=utf-8",
              "<!doctype html><title>floor</title><p>Server time: <span id=t></span><script>new EventSource('/sse')"
              ".onmessage = e => t.textContent = e.data</script>");
    } else {
        reply(fd, "404 Not Found", "text/plain", "not found\n");
    }
}

int main(int argc, char **argv) {
    int port = 8080;
    double interval = 15;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--heartbeat") == 0) interval = atof(argv[i + 1]);
        else { fprintf(stderr, "usage: FloorSSE [--port P] [--heartbeat S]\n"); return 2; }
    }
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    signal(SIGPIPE, SIG_IGN);
    streams = malloc(sizeof(int) * limit.rlim_cur);
    slot_of = malloc(sizeof(int) * limit.rlim_cur);
    for (rlim_t i = 0; i < limit.rlim_cur; i++) slot_of[i] = -1;

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t size = sizeof address;
    getsockname(listener, (struct sockaddr *)&address, &size);
    int poller = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event interest = { .events = EPOLLIN, .data.fd = listener };
    epoll_ctl(poller, EPOLL_CTL_ADD, listener, &interest);
    printf("floor listening on http://127.0.0.1:%d/ (open-file limit %llu)\n", ntohs(address.sin_port),
           (unsigned long long)limit.rlim_cur);
    fflush(stdout);

    struct epoll_event ready[512];
    char buffer[8192];
    double next_beat = interval > 0 ? now_seconds() + interval : 0;
    for (;;) {
        int timeout = -1;
        if (interval > 0) {
            double wait = next_beat - now_seconds();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
        }
        int count = epoll_wait(poller, ready, 512, timeout);
        for (int i = 0; i < count; i++) {
            int fd = ready[i].data.fd;
            if (fd == listener) {
                for (;;) {
                    int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (client < 0) break;  // EAGAIN, or EMFILE: the backlog waits
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event event = { .events = EPOLLIN, .data.fd = client };
                    epoll_ctl(poller, EPOLL_CTL_ADD, client, &event);
                }
                continue;
            }
            ssize_t length = read(fd, buffer, sizeof buffer - 1);
            if (length > 0) {
                if (slot_of[fd] < 0) serve(fd, buffer, length);  // streams send nothing more that matters
            } else if (length == 0 || (errno != EAGAIN && errno != EINTR)) {
                forget(fd);
            }
        }
        if (interval > 0 && now_seconds() >= next_beat) {
            heartbeat_writes += stream_count;
            write_all(heartbeat, sizeof heartbeat - 1);
            next_beat += interval;
        }
    }
}
