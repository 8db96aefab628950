// The echo benchmark's client (Scripts/bench-echo.sh): N connections to an echo server, each with one
// message of SIZE bytes in flight, sent again as soon as it has come back whole (a round trip).
// After WARMUP seconds it measures for SECONDS: round trips, the server's CPU time (summed over its
// threads, from /proc/PID/task/*/schedstat) and, if the server runs with Benchmarks/MallocCount
// preloaded, its allocations (read from the shared counter file). Prints one JSON object.
//
//   EchoClient --port P [--connections 32] [--size 64] [--warmup 2] [--seconds 5]
//              [--server-pid PID] [--counters FILE]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct counters { uint64_t allocations, reallocations, frees; };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/// Nanoseconds the server's threads have run, from each thread's schedstat.
static uint64_t server_cpu_ns(int pid) {
    if (pid <= 0) return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *tasks = opendir(path);
    if (!tasks) return 0;
    uint64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks))) {
        if (entry->d_name[0] == '.') continue;
        char file[128];
        snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", pid, entry->d_name);
        FILE *f = fopen(file, "r");
        if (!f) continue;
        unsigned long long ns = 0;
        if (fscanf(f, "%llu", &ns) == 1) total += ns;
        fclose(f);
    }
    closedir(tasks);
    return total;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    int port = 0, connections = 32, size = 64, server_pid = 0;
    double warmup = 2, seconds = 5;
    const char *counters_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--connections")) connections = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--server-pid")) server_pid = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--counters")) counters_path = argv[i + 1];
        else { fprintf(stderr, "unknown argument %s\n", argv[i]); return 2; }
    }
    if (port <= 0 || connections <= 0 || size <= 0 || size > 65536) { fprintf(stderr, "bad arguments\n"); return 2; }

    volatile struct counters *counters = NULL;
    if (counters_path) {
        int fd = open(counters_path, O_RDONLY);
        if (fd < 0) die("open counters");
        void *page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        if (page == MAP_FAILED) die("mmap counters");
        close(fd);
        counters = page;
    }

    char *message = malloc(size), *buffer = malloc(65536);
    memset(message, 'x', size);
    int *received = calloc(connections, sizeof(int));
    int epoll = epoll_create1(0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7F000001) };
    for (int i = 0; i < connections; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) die("connect");
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event event = { .events = EPOLLIN, .data.u64 = ((uint64_t)i << 32) | (uint32_t)fd };
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
        if (send(fd, message, size, 0) != size) die("send");
    }

    uint64_t round_trips = 0, start_trips = 0, start_cpu = 0;
    struct counters start_counts = {0}, end_counts = {0};
    double begin = now(), measure_from = begin + warmup, measure_until = measure_from + seconds, started = 0;
    int measuring = 0;
    struct epoll_event events[256];
    for (;;) {
        int ready = epoll_wait(epoll, events, 256, 100);
        if (ready < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < ready; e++) {
            int fd = (int)(uint32_t)events[e].data.u64, index = (int)(events[e].data.u64 >> 32);
            ssize_t count = recv(fd, buffer, 65536, 0);
            if (count == 0) { fprintf(stderr, "server closed a connection\n"); return 1; }
            if (count < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                die("recv");
            }
            received[index] += (int)count;
            if (received[index] >= size) {
                received[index] -= size;
                round_trips++;
                if (send(fd, message, size, 0) != size) die("send");
            }
        }
        double t = now();
        if (!measuring && t >= measure_from) {
            measuring = 1;
            started = t;
            start_trips = round_trips;
            start_cpu = server_cpu_ns(server_pid);
            if (counters) start_counts = *(struct counters *)counters;
        } else if (measuring && t >= measure_until) {
            uint64_t trips = round_trips - start_trips;
            uint64_t cpu = server_cpu_ns(server_pid) - start_cpu;
            if (counters) end_counts = *(struct counters *)counters;
            double elapsed = t - started;
            uint64_t allocations = end_counts.allocations - start_counts.allocations;
            uint64_t reallocations = end_counts.reallocations - start_counts.reallocations;
            uint64_t frees = end_counts.frees - start_counts.frees;
            printf("{\"connections\": %d, \"size\": %d, \"seconds\": %.3f, \"roundTrips\": %llu, "
                   "\"roundTripsPerSecond\": %.1f, \"serverCpuSeconds\": %.3f, \"serverCpuMicrosecondsPerRoundTrip\": %.3f, "
                   "\"counted\": %s, \"allocations\": %llu, \"reallocations\": %llu, \"frees\": %llu, "
                   "\"mallocsPerRoundTrip\": %.3f}\n",
                   connections, size, elapsed, (unsigned long long)trips, trips / elapsed, cpu / 1e9,
                   trips ? cpu / 1e3 / trips : 0.0, counters ? "true" : "false", (unsigned long long)allocations,
                   (unsigned long long)reallocations, (unsigned long long)frees,
                   trips ? (double)(allocations + reallocations) / trips : 0.0);
            return 0;
        }
    }
}
