/*
 * virtio-packed-fwd.c - reference forwarder: virtio-net packed virtqueues (virtio 1.2, 2.8) on
 * an instant device. The same forwarder as virtio-fwd.c (split rings), with the ring work of
 * src/drivers/virtio/packed-{rx,tx}-queue.ts: one descriptor ring per queue that driver and
 * device both write, AVAIL/USED flag bits against wrap counters, buffer ids, and the device's
 * event suppression structure instead of used.flags.
 *
 * Build: gcc -O2 -Wall -Wextra -o virtio-packed-fwd virtio-packed-fwd.c
 */
#include "common.h"

#define QUEUE_SIZE 512u
#define NET_HDR_LEN 12u /* struct virtio_net_hdr_v1 */
#define RX_QUEUE 0
#define TX_QUEUE 1

#define VRING_DESC_F_WRITE 2u
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED (1u << 15)
#define VRING_PACKED_EVENT_FLAG_DISABLE 1u

#define TX_RECLAIM_BATCH 32u

struct pvirtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct pvirtq_event_suppress {
	uint16_t desc; /* offset:15, wrap:1 (EVENT_IDX only) */
	uint16_t flags;
};

struct pvirtq {
	volatile struct pvirtq_desc *desc;
	volatile struct pvirtq_event_suppress *driver; /* written by the driver */
	volatile struct pvirtq_event_suppress *device; /* written by the device */
	uint16_t avail_pos, avail_wrap;                 /* next descriptor to make available */
	uint16_t used_pos, used_wrap;                   /* next descriptor the device will mark used */
	uint32_t in_flight;                             /* TX: slots made available and not yet used */
};

/* The instant device's positions and wrap counters. */
struct instant_queue {
	uint16_t avail_pos, avail_wrap, used_pos, used_wrap;
};

struct port {
	struct mempool *pool;
	struct pvirtq rxq, txq;
	struct pkt_buf *rx_bufs[QUEUE_SIZE]; /* buffer id i always names rx_bufs[i] */
	uint8_t rx_held[QUEUE_SIZE];         /* 1 while the device holds RX buffer id i */
	struct pkt_buf *tx_bufs[QUEUE_SIZE]; /* buffer id -> buffer in flight, NULL if free */
	uint16_t tx_free[QUEUE_SIZE];
	uint32_t tx_free_top;
	volatile uint16_t *notify;
	uint64_t rx_errors, rx_missed, tx_errors, notifies;
	struct instant_queue dev_rx, dev_tx;
};

typedef uint32_t __attribute__((may_alias)) u32_alias;

static inline uint16_t avail_flags(uint16_t wrap) {
	return wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
}

static inline uint16_t used_flags(uint16_t wrap) {
	return wrap ? (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED) : 0;
}

static void pvirtq_init(struct pvirtq *q) {
	uint8_t *mem = dma_alloc(QUEUE_SIZE * sizeof(struct pvirtq_desc) + 128).virt;
	q->desc = (volatile struct pvirtq_desc *)mem;
	q->driver = (volatile struct pvirtq_event_suppress *)(mem + QUEUE_SIZE * sizeof(struct pvirtq_desc));
	q->device = (volatile struct pvirtq_event_suppress *)(mem + QUEUE_SIZE * sizeof(struct pvirtq_desc) + 64);
	q->driver->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
	q->device->flags = VRING_PACKED_EVENT_FLAG_DISABLE; /* the instant device's choice, made at setup */
	q->avail_pos = q->used_pos = 0;
	q->avail_wrap = q->used_wrap = 1;
	q->in_flight = 0;
}

/* After the last flags store (seq_cst: a full barrier), asks whether the device wants a notification. */
static inline void pvirtq_kick(struct port *p, struct pvirtq *q, uint16_t queue_index) {
	if (q->device->flags != VRING_PACKED_EVENT_FLAG_DISABLE) {
		*p->notify = queue_index;
		p->notifies++;
	}
}

/* Whether the descriptor at the used position is used (flags read with acquire ordering). */
static inline int pvirtq_used(const struct pvirtq *q, uint16_t pos, uint16_t wrap) {
	uint16_t flags = __atomic_load_n(&q->desc[pos].flags, __ATOMIC_ACQUIRE);
	return (flags & (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED)) == used_flags(wrap);
}

static void port_init(struct port *p) {
	p->pool = mempool_create(POOL_ENTRIES);
	p->notify = dma_alloc(PAGE).virt;
	pvirtq_init(&p->rxq);
	pvirtq_init(&p->txq);
	for (uint32_t i = 0; i < QUEUE_SIZE; i++) {
		struct pkt_buf *buf = pkt_buf_alloc(p->pool);
		if (!buf) die("mempool too small to fill the RX queue");
		p->rx_bufs[i] = buf;
		p->rx_held[i] = 1;
		p->rxq.desc[i].addr = buf->buf_addr - NET_HDR_LEN;
		p->rxq.desc[i].len = NET_HDR_LEN + MAX_FRAME;
		p->rxq.desc[i].id = (uint16_t)i;
		__atomic_store_n(&p->rxq.desc[i].flags, (uint16_t)(avail_flags(1) | VRING_DESC_F_WRITE), __ATOMIC_RELEASE);
	}
	p->rxq.avail_pos = 0;
	p->rxq.avail_wrap = 0; /* the whole ring is available: next lap */
	pvirtq_kick(p, &p->rxq, RX_QUEUE);
	for (uint32_t i = 0; i < QUEUE_SIZE; i++) p->tx_free[i] = (uint16_t)(QUEUE_SIZE - 1 - i);
	p->tx_free_top = QUEUE_SIZE;
	/* Both of the device's wrap counters start at 1 too. */
	p->dev_rx = (struct instant_queue){ .avail_pos = 0, .avail_wrap = 1, .used_pos = 0, .used_wrap = 1 };
	p->dev_tx = p->dev_rx;
}

/* ---- the driver ------------------------------------------------------------------------------ */

NOINLINE static uint32_t virtio_rx_batch(struct port *p, struct pkt_buf **bufs, uint32_t batch) {
	struct pvirtq *q = &p->rxq;
	/* How many are used (in ring order), so that the replacements come in one pool operation. */
	uint32_t n = 0;
	for (uint16_t pos = q->used_pos, wrap = q->used_wrap; n < batch && pvirtq_used(q, pos, wrap); n++) {
		if (++pos == QUEUE_SIZE) {
			pos = 0;
			wrap ^= 1;
		}
	}
	if (n == 0) return 0;
	struct pkt_buf *fresh[MAX_BATCH];
	uint32_t num_fresh = pkt_buf_alloc_batch(p->pool, fresh, n), used_fresh = 0, out = 0, reposted = 0;
	uint16_t a0 = q->avail_pos, a = a0;

	for (uint32_t i = 0; i < n; i++) {
		volatile struct pvirtq_desc *d = &q->desc[q->used_pos];
		uint16_t id = d->id;
		uint32_t frame_len = d->len - NET_HDR_LEN;
		if (++q->used_pos == QUEUE_SIZE) {
			q->used_pos = 0;
			q->used_wrap ^= 1;
		}
		if (id >= QUEUE_SIZE || !p->rx_held[id]) {
			p->rx_errors++; /* not a buffer the device holds */
			continue;
		}
		p->rx_held[id] = 0;
		struct pkt_buf *buf = p->rx_bufs[id];
		if (frame_len == 0 || frame_len > MAX_FRAME) {
			p->rx_errors++;
		} else if (used_fresh == num_fresh) {
			p->rx_missed++;
		} else {
			buf->size = frame_len;
			bufs[out++] = buf;
			buf = fresh[used_fresh++];
			p->rx_bufs[id] = buf;
		}
		volatile struct pvirtq_desc *n = &q->desc[a];
		n->addr = buf->buf_addr - NET_HDR_LEN;
		n->len = NET_HDR_LEN + MAX_FRAME;
		n->id = id;
		if (++a == QUEUE_SIZE) a = 0;
		reposted++;
	}
	for (uint32_t i = used_fresh; i < num_fresh; i++) pkt_buf_free(fresh[i]);
	if (reposted) {
		/* Second pass: hand the slots to the device, oldest first; the last store is a full barrier. */
		uint16_t pos = a0, wrap = q->avail_wrap;
		for (uint32_t k = 0; k < reposted; k++) {
			p->rx_held[q->desc[pos].id] = 1;
			uint16_t flags = (uint16_t)(avail_flags(wrap) | VRING_DESC_F_WRITE);
			if (k + 1 < reposted) __atomic_store_n(&q->desc[pos].flags, flags, __ATOMIC_RELEASE);
			else __atomic_store_n(&q->desc[pos].flags, flags, __ATOMIC_SEQ_CST);
			if (++pos == QUEUE_SIZE) {
				pos = 0;
				wrap ^= 1;
			}
		}
		q->avail_pos = pos;
		q->avail_wrap = wrap;
		pvirtq_kick(p, q, RX_QUEUE);
	}
	return out;
}

/* Takes back every buffer the device has marked used. */
static void virtio_tx_reclaim(struct port *p) {
	struct pvirtq *q = &p->txq;
	uint32_t k = 0;
	for (; k < q->in_flight && pvirtq_used(q, q->used_pos, q->used_wrap); k++) {
		uint16_t id = q->desc[q->used_pos].id;
		if (++q->used_pos == QUEUE_SIZE) {
			q->used_pos = 0;
			q->used_wrap ^= 1;
		}
		if (id >= QUEUE_SIZE || !p->tx_bufs[id]) {
			p->tx_errors++;
			continue;
		}
		pkt_buf_free(p->tx_bufs[id]);
		p->tx_bufs[id] = NULL;
		p->tx_free[p->tx_free_top++] = id;
	}
	q->in_flight -= k;
}

/* Whether TX_RECLAIM_BATCH descriptors are used: the TX_RECLAIM_BATCH-th in flight is. */
static inline int tx_batch_used(const struct pvirtq *q) {
	if (q->in_flight < TX_RECLAIM_BATCH) return 0;
	uint32_t pos = q->used_pos + TX_RECLAIM_BATCH - 1;
	uint16_t wrap = q->used_wrap;
	if (pos >= QUEUE_SIZE) {
		pos -= QUEUE_SIZE;
		wrap ^= 1;
	}
	return pvirtq_used(q, (uint16_t)pos, wrap);
}

NOINLINE static uint32_t virtio_tx_batch(struct port *p, struct pkt_buf **bufs, uint32_t count) {
	struct pvirtq *q = &p->txq;
	if (p->tx_free_top < count || tx_batch_used(q)) virtio_tx_reclaim(p);

	uint16_t a0 = q->avail_pos, first_flags = 0;
	uint32_t taken = 0, sent = 0;
	for (; taken < count && p->tx_free_top > 0; taken++) {
		struct pkt_buf *buf = bufs[taken];
		if (buf->size == 0 || buf->size > MAX_FRAME) {
			pkt_buf_free(buf);
			p->tx_errors++;
			continue;
		}
		u32_alias *hdr = (u32_alias *)(buf->data - NET_HDR_LEN);
		hdr[0] = 0;
		hdr[1] = 0;
		hdr[2] = 0;
		uint16_t id = p->tx_free[--p->tx_free_top];
		p->tx_bufs[id] = buf;
		volatile struct pvirtq_desc *d = &q->desc[q->avail_pos];
		d->addr = buf->buf_addr - NET_HDR_LEN;
		d->len = buf->size + NET_HDR_LEN;
		d->id = id;
		/* The batch's first descriptor is made available last: the device sees the batch whole. */
		if (sent == 0) first_flags = avail_flags(q->avail_wrap);
		else __atomic_store_n(&d->flags, avail_flags(q->avail_wrap), __ATOMIC_RELEASE);
		if (++q->avail_pos == QUEUE_SIZE) {
			q->avail_pos = 0;
			q->avail_wrap ^= 1;
		}
		sent++;
	}
	if (sent) {
		q->in_flight += sent;
		__atomic_store_n(&q->desc[a0].flags, first_flags, __ATOMIC_SEQ_CST);
		pvirtq_kick(p, q, TX_QUEUE);
	}
	return taken;
}

/* ---- the instant device ---------------------------------------------------------------------- */

/* Marks up to `limit` available descriptors used (in order), each with used length `len`. */
static inline void device_consume(struct pvirtq *q, struct instant_queue *dev, uint32_t limit, uint32_t len) {
	for (uint32_t i = 0; i < limit; i++) {
		volatile struct pvirtq_desc *d = &q->desc[dev->avail_pos];
		uint16_t flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
		uint16_t want = avail_flags(dev->avail_wrap);
		if ((flags & (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED)) != want) break;
		uint16_t id = d->id;
		if (++dev->avail_pos == QUEUE_SIZE) {
			dev->avail_pos = 0;
			dev->avail_wrap ^= 1;
		}
		volatile struct pvirtq_desc *u = &q->desc[dev->used_pos];
		u->id = id;
		u->len = len;
		__atomic_store_n(&u->flags, used_flags(dev->used_wrap), __ATOMIC_RELEASE);
		if (++dev->used_pos == QUEUE_SIZE) {
			dev->used_pos = 0;
			dev->used_wrap ^= 1;
		}
	}
}

NOINLINE static void device_rx(struct port *p, uint32_t batch) {
	device_consume(&p->rxq, &p->dev_rx, batch, NET_HDR_LEN + FRAME_LEN);
}

NOINLINE static void device_tx(struct port *p) {
	device_consume(&p->txq, &p->dev_tx, QUEUE_SIZE, 0);
}

/* ---- the forwarder --------------------------------------------------------------------------- */

struct forwarder {
	struct port ports[2];
	uint64_t received; /* over all runs, for the final check */
};

static inline uint32_t forward_one_way(struct port *rx, struct port *tx, struct pkt_buf **bufs, uint32_t batch) {
	device_rx(rx, batch);
	uint32_t n = virtio_rx_batch(rx, bufs, batch);
	for (uint32_t i = 0; i < n; i++) bufs[i]->data[1]++;
	uint32_t sent = virtio_tx_batch(tx, bufs, n);
	for (uint32_t i = sent; i < n; i++) pkt_buf_free(bufs[i]);
	device_tx(tx);
	return n;
}

static uint64_t forward(void *ctx, uint32_t batch, uint64_t packets) {
	struct forwarder *f = ctx;
	struct pkt_buf *bufs[MAX_BATCH];
	uint64_t forwarded = 0;
	uint32_t idle = 0;
	while (forwarded < packets) {
		uint32_t moved = forward_one_way(&f->ports[0], &f->ports[1], bufs, batch);
		moved += forward_one_way(&f->ports[1], &f->ports[0], bufs, batch);
		check_progress(moved, &idle);
		forwarded += moved;
	}
	f->received += forwarded;
	return forwarded;
}

/* Every buffer is free, behind an RX descriptor, or in flight on a TX queue. */
static void verify(struct forwarder *f) {
	struct census c;
	census_start(&c, f->ports[0].pool, f->ports[1].pool);
	census_add_free(&c);
	for (int i = 0; i < 2; i++) {
		struct port *p = &f->ports[i];
		uint32_t in_flight = 0;
		for (uint32_t d = 0; d < QUEUE_SIZE; d++) {
			census_add(&c, p->rx_bufs[d]);
			if (p->tx_bufs[d]) {
				census_add(&c, p->tx_bufs[d]);
				in_flight++;
			}
		}
		if (in_flight + p->tx_free_top != QUEUE_SIZE)
			die("verification failed: port %d has %u TX descriptors in flight and %u free of %u", i, in_flight,
			    p->tx_free_top, QUEUE_SIZE);
		if (p->rx_errors || p->rx_missed || p->tx_errors)
			die("verification failed: port %d counted %llu RX errors, %llu RX misses, %llu TX errors", i,
			    (unsigned long long)p->rx_errors, (unsigned long long)p->rx_missed,
			    (unsigned long long)p->tx_errors);
		if (p->notifies) die("verification failed: port %d notified although the device said NO_NOTIFY", i);
	}
	census_finish(&c, f->received);
}

int main(int argc, char **argv) {
	struct bench_args args;
	parse_args(argc, argv, &args);
	if (args.threads > 0) {
		void **fs = forwarders(args.threads, sizeof(struct forwarder));
		for (int t = 0; t < args.threads; t++) {
			port_init(&((struct forwarder *)fs[t])->ports[0]);
			port_init(&((struct forwarder *)fs[t])->ports[1]);
		}
		bench_threads("virtio-packed", &args, forward, fs);
		for (int t = 0; t < args.threads; t++) verify(fs[t]);
		return 0;
	}
	static struct forwarder f; /* static: large, and zeroed */
	port_init(&f.ports[0]);
	port_init(&f.ports[1]);
	bench_run("virtio-packed", &args, forward, &f);
	verify(&f);
	return 0;
}
