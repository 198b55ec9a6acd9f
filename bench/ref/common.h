/*
 * common.h - what the two reference forwarders share.
 *
 * The C in bench/ref is the yardstick for the TypeScript drivers, not part of them. Each
 * forwarder is a small ixy-style driver plus an "instant device": device-side code in the same
 * process that completes every descriptor at once. Nothing waits on hardware, so the time
 * measured is the driver's ring work (plus the instant device's few stores, which both the C
 * and the TypeScript runs pay alike).
 *
 * This header holds ixy's packet buffers and mempools, made-up device memory, the clock, the
 * command line, the benchmark loop with its JSON line, and a census that checks at the end that
 * every buffer is accounted for exactly once.
 */
#ifndef BENCH_REF_COMMON_H
#define BENCH_REF_COMMON_H

#define _GNU_SOURCE /* pthread_setaffinity_np, CPU_SET: the --threads mode pins its threads */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The rings are read as little-endian structures; both x86-64 and arm64 are. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian hosts only");

#define BUF_SIZE 2048u      /* bytes per mempool entry */
#define BUF_HEADROOM 64u    /* metadata lives here; the frame starts at entry + 64 */
#define MAX_FRAME (BUF_SIZE - BUF_HEADROOM) /* 1984: the largest frame a buffer holds */
#define POOL_ENTRIES 4096u  /* buffers per port */
#define FRAME_LEN 60u       /* what the instant device "receives" */
#define PAGE 4096u
#define MAX_BATCH 512u      /* no ring is larger, so no batch needs to be */
#define MAX_BATCHES 32
#define MAX_RUNS 64
#define MAX_THREADS 64

#define NOINLINE __attribute__((noinline))

/* Print a message and stop: used for broken invariants and bad arguments. */
#define die(...)                                                                                \
	do {                                                                                        \
		fprintf(stderr, __VA_ARGS__);                                                           \
		fputc('\n', stderr);                                                                    \
		exit(1);                                                                                \
	} while (0)

/* ---- made-up device memory ---------------------------------------------------------------- */

/*
 * Device addresses (IOVAs) are invented: allocations get consecutive ranges upwards from
 * 4 GiB, so every address the driver writes into a descriptor needs its upper 32 bits. The
 * instant device never dereferences them; it only writes status words and used entries.
 */
#define IOVA_BASE 0x100000000ull

struct dma_mem {
	void *virt;
	uint64_t iova;
};

static uint64_t next_iova = IOVA_BASE;

/* Zeroed, page-aligned memory standing in for DMA memory (a real driver uses hugepages). */
static inline struct dma_mem dma_alloc(size_t size) {
	size = (size + PAGE - 1) / PAGE * PAGE;
	void *virt = aligned_alloc(PAGE, size);
	if (!virt) die("out of memory allocating %zu bytes", size);
	memset(virt, 0, size);
	struct dma_mem mem = {virt, next_iova};
	next_iova += size;
	return mem;
}

/* ---- packet buffers and mempools, as in ixy ----------------------------------------------- */

struct mempool;

/* One mempool entry: this metadata, padding up to 64 bytes, then the frame. */
struct pkt_buf {
	uint64_t buf_addr;        /* device address of data[] */
	struct mempool *mempool;  /* where pkt_buf_free returns it */
	uint32_t mempool_idx;     /* its index in that pool */
	uint32_t size;            /* frame length in data[] */
	uint8_t head_room[BUF_HEADROOM - 24]; /* virtio puts its 12-byte header at the end of this */
	uint8_t data[];
};
_Static_assert(offsetof(struct pkt_buf, data) == BUF_HEADROOM, "frame data must start at +64");

/* A fixed set of equal buffers and a stack of the free ones' indices (last freed, first reused). */
struct mempool {
	uint8_t *base;
	uint32_t num_entries;
	uint32_t free_top;     /* how many indices are on the stack */
	uint32_t free_stack[]; /* free_stack[0 .. free_top-1] are free */
};

static inline struct pkt_buf *pool_entry(const struct mempool *mp, uint32_t idx) {
	return (struct pkt_buf *)(mp->base + (size_t)idx * BUF_SIZE);
}

static inline struct mempool *mempool_create(uint32_t num_entries) {
	struct mempool *mp = malloc(sizeof(*mp) + num_entries * sizeof(uint32_t));
	if (!mp) die("out of memory for a mempool");
	struct dma_mem mem = dma_alloc((size_t)num_entries * BUF_SIZE);
	mp->base = mem.virt;
	mp->num_entries = num_entries;
	mp->free_top = num_entries;
	for (uint32_t i = 0; i < num_entries; i++) {
		struct pkt_buf *buf = pool_entry(mp, i);
		buf->buf_addr = mem.iova + (uint64_t)i * BUF_SIZE + BUF_HEADROOM;
		buf->mempool = mp;
		buf->mempool_idx = i;
		buf->size = 0;
		/* Lowest index on top, so the first buffers handed out are the first in memory. */
		mp->free_stack[i] = num_entries - 1 - i;
	}
	return mp;
}

/* Up to n buffers, fewer if the pool runs low; returns how many. */
static inline uint32_t pkt_buf_alloc_batch(struct mempool *mp, struct pkt_buf **bufs, uint32_t n) {
	if (n > mp->free_top) n = mp->free_top;
	for (uint32_t i = 0; i < n; i++) bufs[i] = pool_entry(mp, mp->free_stack[--mp->free_top]);
	return n;
}

static inline struct pkt_buf *pkt_buf_alloc(struct mempool *mp) {
	if (mp->free_top == 0) return NULL;
	return pool_entry(mp, mp->free_stack[--mp->free_top]);
}

static inline void pkt_buf_free(struct pkt_buf *buf) {
	struct mempool *mp = buf->mempool;
	mp->free_stack[mp->free_top++] = buf->mempool_idx;
}

/* ---- the census: every buffer exactly once ------------------------------------------------ */

/*
 * At the end each forwarder names every buffer it knows of (free in a pool, in an RX ring, in
 * flight on a TX ring). A buffer named twice or never means the ring code lost or duplicated one.
 */
struct census {
	struct mempool *pools[2];
	uint8_t *seen[2];
	uint64_t duplicates;
};

static inline void census_start(struct census *c, struct mempool *a, struct mempool *b) {
	c->pools[0] = a;
	c->pools[1] = b;
	for (int p = 0; p < 2; p++) {
		c->seen[p] = calloc(c->pools[p]->num_entries, 1);
		if (!c->seen[p]) die("out of memory for the census");
	}
	c->duplicates = 0;
}

static inline void census_add(struct census *c, const struct pkt_buf *buf) {
	for (int p = 0; p < 2; p++) {
		if (buf->mempool != c->pools[p]) continue;
		if (c->seen[p][buf->mempool_idx]++) c->duplicates++;
		return;
	}
	die("census: a buffer from an unknown mempool");
}

static inline void census_add_free(struct census *c) {
	for (int p = 0; p < 2; p++) {
		struct mempool *mp = c->pools[p];
		for (uint32_t i = 0; i < mp->free_top; i++) census_add(c, pool_entry(mp, mp->free_stack[i]));
	}
}

/*
 * Checks the census and the byte touch: every received frame had data[1] incremented once, so
 * the sum of data[1] over all buffers equals the number received, modulo 256. This also makes
 * the touch observable, so the compiler cannot drop it.
 */
static inline void census_finish(struct census *c, uint64_t received) {
	uint64_t missing = 0, touched = 0;
	for (int p = 0; p < 2; p++) {
		struct mempool *mp = c->pools[p];
		for (uint32_t i = 0; i < mp->num_entries; i++) {
			if (!c->seen[p][i]) missing++;
			touched += pool_entry(mp, i)->data[1];
		}
		free(c->seen[p]);
	}
	if (missing || c->duplicates)
		die("verification failed: %llu buffers unaccounted for, %llu accounted twice",
		    (unsigned long long)missing, (unsigned long long)c->duplicates);
	if ((touched & 0xff) != (received & 0xff))
		die("verification failed: byte touches (%llu mod 256) do not match frames received (%llu)",
		    (unsigned long long)(touched & 0xff), (unsigned long long)received);
	if (received == 0) die("verification failed: nothing was forwarded");
}

/* ---- clock, command line, benchmark loop -------------------------------------------------- */

static inline uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct bench_args {
	uint32_t batches[MAX_BATCHES];
	int num_batches;
	uint64_t packets; /* per timed run */
	int runs;
	uint64_t warmup;  /* packets before the timed runs of each batch size */
	int threads;      /* --threads N: the scaling bench's mode (bench_threads); 0: the normal one */
	int cores[MAX_THREADS]; /* --cores LIST: thread t runs on cores[t]; -1: not pinned */
};

static inline void usage(const char *prog) {
	fprintf(stderr,
	        "usage: %s [--batches 1,2,...,256] [--packets N] [--runs R] [--warmup W]\n"
	        "  prints one JSON line per batch size: ns per packet of each timed run\n"
	        "       %s --threads N [--cores 0,1,...] [--batches B] [--packets N] [--warmup W]\n"
	        "  N threads, each with its own two ports, forward N packets each at once; one JSON line\n",
	        prog,
	        prog);
	exit(2);
}

static inline uint64_t parse_count(const char *prog, const char *text, uint64_t min, uint64_t max) {
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (end == text || *end || text[0] == '-' || v < min || v > max) {
		fprintf(stderr, "%s: '%s' is not a number in %llu..%llu\n", prog, text,
		        (unsigned long long)min, (unsigned long long)max);
		usage(prog);
	}
	return v;
}

static inline void parse_args(int argc, char **argv, struct bench_args *a) {
	static const uint32_t default_batches[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
	a->num_batches = 9;
	memcpy(a->batches, default_batches, sizeof(default_batches));
	a->packets = 10000000;
	a->runs = 3;
	a->warmup = 2000000;
	a->threads = 0;
	for (int t = 0; t < MAX_THREADS; t++) a->cores[t] = -1;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) usage(argv[0]);
		if (i + 1 >= argc) {
			fprintf(stderr, "%s: %s wants a value\n", argv[0], opt);
			usage(argv[0]);
		}
		const char *val = argv[++i];
		if (!strcmp(opt, "--packets")) {
			a->packets = parse_count(argv[0], val, 1, 1000000000000ull);
		} else if (!strcmp(opt, "--runs")) {
			a->runs = (int)parse_count(argv[0], val, 1, MAX_RUNS);
		} else if (!strcmp(opt, "--warmup")) {
			a->warmup = parse_count(argv[0], val, 0, 1000000000000ull);
		} else if (!strcmp(opt, "--threads")) {
			a->threads = (int)parse_count(argv[0], val, 1, MAX_THREADS);
		} else if (!strcmp(opt, "--cores")) {
			char list[256];
			snprintf(list, sizeof(list), "%s", val);
			int t = 0;
			for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
				if (t == MAX_THREADS) die("%s: at most %d cores", argv[0], MAX_THREADS);
				a->cores[t++] = (int)parse_count(argv[0], tok, 0, CPU_SETSIZE - 1);
			}
		} else if (!strcmp(opt, "--batches")) {
			char list[256];
			snprintf(list, sizeof(list), "%s", val);
			a->num_batches = 0;
			for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
				if (a->num_batches == MAX_BATCHES) die("%s: at most %d batch sizes", argv[0], MAX_BATCHES);
				a->batches[a->num_batches++] = (uint32_t)parse_count(argv[0], tok, 1, MAX_BATCH);
			}
			if (a->num_batches == 0) usage(argv[0]);
		} else {
			fprintf(stderr, "%s: unknown option %s\n", argv[0], opt);
			usage(argv[0]);
		}
	}
}

/* Forwards at least `packets` frames with the given batch size; returns how many it forwarded. */
typedef uint64_t (*forward_fn)(void *ctx, uint32_t batch, uint64_t packets);

/*
 * Per batch size: warm up, then time each run and print one JSON line. A run forwards a few
 * packets more than asked (it stops after a whole loop iteration), so ns/packet divides by the
 * count actually forwarded.
 */
static inline void bench_run(const char *driver, const struct bench_args *a, forward_fn forward, void *ctx) {
	for (int b = 0; b < a->num_batches; b++) {
		uint32_t batch = a->batches[b];
		if (a->warmup) forward(ctx, batch, a->warmup);
		double runs_ns[MAX_RUNS], best = 0;
		for (int r = 0; r < a->runs; r++) {
			uint64_t start = now_ns();
			uint64_t forwarded = forward(ctx, batch, a->packets);
			uint64_t elapsed = now_ns() - start;
			runs_ns[r] = (double)elapsed / (double)forwarded;
			if (r == 0 || runs_ns[r] < best) best = runs_ns[r];
		}
		printf("{\"impl\":\"c\",\"driver\":\"%s\",\"batch\":%u,\"packets\":%llu,\"runsNs\":[", driver, batch,
		       (unsigned long long)a->packets);
		for (int r = 0; r < a->runs; r++) printf("%s%.4f", r ? "," : "", runs_ns[r]);
		printf("],\"bestNs\":%.4f}\n", best);
		fflush(stdout);
	}
}

/*
 * --threads N (npm run bench -- --scaling, bench/scaling/): N threads, each pinned to its core and
 * each with a forwarder of its own (two ports, their rings and pools: what a worker of the
 * TypeScript scaling bench drives as queue pair t of two shared ports). Each thread warms up,
 * waits at a barrier, then forwards `packets` frames with the first batch size; one JSON line
 * gives each thread's start and end (CLOCK_MONOTONIC, shared by the threads) and frames.
 */
struct thread_job {
	forward_fn forward;
	void *ctx;
	uint32_t batch;
	uint64_t packets, warmup;
	int core;
	pthread_barrier_t *start_line;
	uint64_t start_ns, end_ns, forwarded;
};

static void *thread_main(void *arg) {
	struct thread_job *j = arg;
	if (j->core >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(j->core, &set);
		int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (err) die("--threads: pinning a thread to core %d failed (error %d)", j->core, err);
	}
	if (j->warmup) j->forward(j->ctx, j->batch, j->warmup);
	pthread_barrier_wait(j->start_line);
	j->start_ns = now_ns();
	j->forwarded = j->forward(j->ctx, j->batch, j->packets);
	j->end_ns = now_ns();
	return NULL;
}

/* `ctxs[t]` is thread t's forwarder. */
static inline void bench_threads(const char *driver, const struct bench_args *a, forward_fn forward, void **ctxs) {
	struct thread_job jobs[MAX_THREADS];
	pthread_t ids[MAX_THREADS];
	pthread_barrier_t start_line;
	if (pthread_barrier_init(&start_line, NULL, (unsigned)a->threads)) die("--threads: pthread_barrier_init failed");
	for (int t = 0; t < a->threads; t++) {
		jobs[t] = (struct thread_job){forward, ctxs[t], a->batches[0], a->packets, a->warmup, a->cores[t], &start_line, 0, 0, 0};
		if (pthread_create(&ids[t], NULL, thread_main, &jobs[t])) die("--threads: pthread_create failed");
	}
	for (int t = 0; t < a->threads; t++) pthread_join(ids[t], NULL);
	pthread_barrier_destroy(&start_line);
	printf("{\"impl\":\"c\",\"driver\":\"%s\",\"threads\":%d,\"batch\":%u,\"packets\":%llu,\"startNs\":[", driver, a->threads,
	       a->batches[0], (unsigned long long)a->packets);
	for (int t = 0; t < a->threads; t++) printf("%s%llu", t ? "," : "", (unsigned long long)jobs[t].start_ns);
	printf("],\"endNs\":[");
	for (int t = 0; t < a->threads; t++) printf("%s%llu", t ? "," : "", (unsigned long long)jobs[t].end_ns);
	printf("],\"forwarded\":[");
	for (int t = 0; t < a->threads; t++) printf("%s%llu", t ? "," : "", (unsigned long long)jobs[t].forwarded);
	printf("]}\n");
	fflush(stdout);
}

/* Forwarders of their own for --threads, page-aligned and apart (no line shared between threads). */
static inline void **forwarders(int n, size_t size) {
	static void *ctxs[MAX_THREADS];
	size = (size + PAGE - 1) / PAGE * PAGE;
	for (int t = 0; t < n; t++) {
		ctxs[t] = aligned_alloc(PAGE, size);
		if (!ctxs[t]) die("out of memory for a forwarder");
		memset(ctxs[t], 0, size);
	}
	return ctxs;
}

/*
 * Loop guard for the forwarders: an instant device always has frames, so a whole loop iteration
 * that moves nothing means the ring state is wedged; stop instead of spinning forever.
 */
static inline void check_progress(uint32_t moved, uint32_t *idle) {
	if (moved) {
		*idle = 0;
	} else if (++*idle > 1000) {
		die("no progress: 1000 loop iterations forwarded nothing");
	}
}

#endif
