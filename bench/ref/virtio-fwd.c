/*
 * virtio-fwd.c - reference forwarder: virtio-net split virtqueues (virtio 1.2, 2.7) on an
 * instant device.
 *
 * Two ports, A and B, each with a receive queue (0) and a transmit queue (1) of 512 entries.
 * Modern devices put a 12-byte virtio_net_hdr_v1 in front of every frame; the driver places
 * it in the buffer's headroom, just below the frame, so frames stay at entry + 64. Per loop
 * iteration, for A->B and then B->A: the device fills up to `batch` RX buffers, the driver
 * receives them, touches one byte of each frame, transmits them on the other port, and the
 * device consumes every TX buffer it was offered.
 *
 * Build: gcc -O2 -Wall -Wextra -o virtio-fwd virtio-fwd.c
 */
#include "common.h"

#define QUEUE_SIZE 512u
#define QUEUE_MASK (QUEUE_SIZE - 1)
#define NET_HDR_LEN 12u /* struct virtio_net_hdr_v1 */
#define RX_QUEUE 0
#define TX_QUEUE 1

#define VIRTQ_DESC_F_WRITE 2u           /* the device writes this buffer */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u   /* the driver polls; the device need not interrupt */
#define VIRTQ_USED_F_NO_NOTIFY 1u       /* the device polls; the driver need not notify */

/* Reclaim sent buffers once this many are done, so reclaiming is batched like ixgbe's cleaning. */
#define TX_RECLAIM_BATCH 32u

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[QUEUE_SIZE];
	uint16_t used_event; /* only with VIRTIO_F_EVENT_IDX; part of the layout all the same */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[QUEUE_SIZE];
	uint16_t avail_event;
};

/*
 * The three parts in one allocation: descriptor table, available ring right after it, used ring
 * at the next 4 KiB boundary. The device side reads and writes them too, hence volatile.
 */
struct virtq {
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	uint16_t avail_idx; /* the driver's copy of avail.idx, published in one store */
	uint16_t last_used; /* next used entry the driver has not consumed */
};

/* The instant device's own positions in the two rings of each queue. */
struct instant_queue {
	uint16_t last_avail, used_idx;
};

struct port {
	struct mempool *pool;
	struct virtq rxq, txq;
	struct pkt_buf *rx_bufs[QUEUE_SIZE]; /* descriptor i always carries rx_bufs[i] */
	struct pkt_buf *tx_bufs[QUEUE_SIZE]; /* descriptor id -> buffer in flight, NULL if free */
	uint16_t tx_free[QUEUE_SIZE];        /* stack of free TX descriptor ids */
	uint32_t tx_free_top;
	volatile uint16_t *notify;           /* fake queue-notify register */
	uint64_t rx_errors, rx_missed, tx_errors, notifies;
	struct instant_queue dev_rx, dev_tx;
};

/* The 12-byte header is cleared with three 32-bit stores into the byte headroom. */
typedef uint32_t __attribute__((may_alias)) u32_alias;

static void virtq_init(struct virtq *q) {
	size_t avail_off = QUEUE_SIZE * sizeof(struct virtq_desc);
	size_t used_off = (avail_off + sizeof(struct virtq_avail) + PAGE - 1) / PAGE * PAGE;
	uint8_t *mem = dma_alloc(used_off + sizeof(struct virtq_used)).virt;
	q->desc = (volatile struct virtq_desc *)mem;
	q->avail = (volatile struct virtq_avail *)(mem + avail_off);
	q->used = (volatile struct virtq_used *)(mem + used_off);
	q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	q->used->flags = VIRTQ_USED_F_NO_NOTIFY; /* the instant device's choice, made at setup */
	q->avail_idx = 0;
	q->last_used = 0;
}

/*
 * Makes new available entries visible, then asks whether the device wants a notification. The
 * sequentially consistent store is a full barrier: the flag read cannot move before it, which is
 * the ordering virtio 1.2, 2.7.13.6 requires.
 */
static inline void virtq_publish(struct port *p, struct virtq *q, uint16_t queue_index) {
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_SEQ_CST);
	if (!(q->used->flags & VIRTQ_USED_F_NO_NOTIFY)) {
		*p->notify = queue_index;
		p->notifies++;
	}
}

/* used.idx is read with acquire ordering: the entries it covers are read after it. */
static inline uint16_t virtq_used_pending(const struct virtq *q) {
	uint16_t pending = (uint16_t)(__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) - q->last_used);
	if (pending > QUEUE_SIZE) die("virtio: device reports %u used entries on a %u-entry queue", pending, QUEUE_SIZE);
	return pending;
}

static void port_init(struct port *p) {
	p->pool = mempool_create(POOL_ENTRIES);
	p->notify = dma_alloc(PAGE).virt;
	virtq_init(&p->rxq);
	virtq_init(&p->txq);
	for (uint32_t i = 0; i < QUEUE_SIZE; i++) {
		struct pkt_buf *buf = pkt_buf_alloc(p->pool);
		if (!buf) die("mempool too small to fill the RX queue");
		p->rx_bufs[i] = buf;
		p->rxq.desc[i].addr = buf->buf_addr - NET_HDR_LEN;
		p->rxq.desc[i].len = NET_HDR_LEN + MAX_FRAME;
		p->rxq.desc[i].flags = VIRTQ_DESC_F_WRITE;
		p->rxq.avail->ring[i] = (uint16_t)i;
	}
	p->rxq.avail_idx = QUEUE_SIZE;
	virtq_publish(p, &p->rxq, RX_QUEUE);
	for (uint32_t i = 0; i < QUEUE_SIZE; i++) p->tx_free[i] = (uint16_t)(QUEUE_SIZE - 1 - i);
	p->tx_free_top = QUEUE_SIZE;
}

/* ---- the driver ------------------------------------------------------------------------------ */

/* Noinline like a driver behind ixy's function pointers: the forwarder calls an API, not a macro. */
NOINLINE static uint32_t virtio_rx_batch(struct port *p, struct pkt_buf **bufs, uint32_t batch) {
	struct virtq *q = &p->rxq;
	uint32_t pending = virtq_used_pending(q);
	if (pending == 0) return 0;
	uint32_t n = pending < batch ? pending : batch;

	/* Replacements for all n up front: one pool operation instead of n. */
	struct pkt_buf *fresh[MAX_BATCH];
	uint32_t num_fresh = pkt_buf_alloc_batch(p->pool, fresh, n), used_fresh = 0, out = 0;
	uint16_t avail_start = q->avail_idx;

	for (uint32_t i = 0; i < n; i++) {
		volatile struct virtq_used_elem *e = &q->used->ring[q->last_used & QUEUE_MASK];
		uint32_t id = e->id;
		uint32_t frame_len = e->len - NET_HDR_LEN; /* wraps to huge if len < 12: rejected below */
		q->last_used++;
		if (id >= QUEUE_SIZE) {
			p->rx_errors++; /* not a descriptor of ours: nothing to give back */
			continue;
		}
		if (frame_len == 0 || frame_len > MAX_FRAME) {
			p->rx_errors++; /* drop it; the descriptor keeps its buffer */
		} else if (used_fresh == num_fresh) {
			p->rx_missed++; /* no replacement: drop the frame, keep the buffer */
		} else {
			struct pkt_buf *buf = p->rx_bufs[id];
			buf->size = frame_len;
			bufs[out++] = buf;
			struct pkt_buf *repl = fresh[used_fresh++];
			p->rx_bufs[id] = repl;
			q->desc[id].addr = repl->buf_addr - NET_HDR_LEN; /* len and flags never change */
		}
		q->avail->ring[q->avail_idx & QUEUE_MASK] = (uint16_t)id;
		q->avail_idx++;
	}
	for (uint32_t i = used_fresh; i < num_fresh; i++) pkt_buf_free(fresh[i]);
	if (q->avail_idx != avail_start) virtq_publish(p, q, RX_QUEUE);
	return out;
}

/* Takes back every buffer the device has finished sending. */
static void virtio_tx_reclaim(struct port *p, uint32_t pending) {
	struct virtq *q = &p->txq;
	for (uint32_t i = 0; i < pending; i++) {
		uint32_t id = q->used->ring[q->last_used & QUEUE_MASK].id;
		q->last_used++;
		if (id >= QUEUE_SIZE || !p->tx_bufs[id]) {
			p->tx_errors++; /* the device names a descriptor that was not in flight */
			continue;
		}
		pkt_buf_free(p->tx_bufs[id]);
		p->tx_bufs[id] = NULL;
		p->tx_free[p->tx_free_top++] = (uint16_t)id;
	}
}

NOINLINE static uint32_t virtio_tx_batch(struct port *p, struct pkt_buf **bufs, uint32_t count) {
	struct virtq *q = &p->txq;
	uint32_t pending = virtq_used_pending(q);
	if (p->tx_free_top < count || pending >= TX_RECLAIM_BATCH) virtio_tx_reclaim(p, pending);

	uint16_t avail_start = q->avail_idx;
	uint32_t taken = 0;
	for (; taken < count && p->tx_free_top > 0; taken++) {
		struct pkt_buf *buf = bufs[taken];
		if (buf->size == 0 || buf->size > MAX_FRAME) {
			pkt_buf_free(buf); /* taken and dropped, so the caller must not free it again */
			p->tx_errors++;
			continue;
		}
		u32_alias *hdr = (u32_alias *)(buf->data - NET_HDR_LEN); /* no offloads: all zero */
		hdr[0] = 0;
		hdr[1] = 0;
		hdr[2] = 0;
		uint16_t id = p->tx_free[--p->tx_free_top];
		p->tx_bufs[id] = buf;
		volatile struct virtq_desc *d = &q->desc[id];
		d->addr = buf->buf_addr - NET_HDR_LEN;
		d->len = buf->size + NET_HDR_LEN;
		d->flags = 0;
		d->next = 0;
		q->avail->ring[q->avail_idx & QUEUE_MASK] = id;
		q->avail_idx++;
	}
	if (q->avail_idx != avail_start) virtq_publish(p, q, TX_QUEUE);
	return taken;
}

/* ---- the instant device ---------------------------------------------------------------------- */

/* Moves available entries to the used ring (at most `limit`), each with used length `len`. */
static inline void device_consume(struct virtq *q, struct instant_queue *dev, uint32_t limit, uint32_t len) {
	uint16_t avail_idx = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
	uint16_t last = dev->last_avail, used = dev->used_idx;
	for (uint32_t i = 0; i < limit && last != avail_idx; i++) {
		volatile struct virtq_used_elem *e = &q->used->ring[used & QUEUE_MASK];
		e->id = q->avail->ring[last & QUEUE_MASK];
		e->len = len;
		last++;
		used++;
	}
	if (used != dev->used_idx) __atomic_store_n(&q->used->idx, used, __ATOMIC_RELEASE);
	dev->last_avail = last;
	dev->used_idx = used;
}

/* "Receives" a 60-byte frame (after its 12-byte header) into up to `batch` buffers. */
NOINLINE static void device_rx(struct port *p, uint32_t batch) {
	device_consume(&p->rxq, &p->dev_rx, batch, NET_HDR_LEN + FRAME_LEN);
}

/* "Sends" every buffer offered; a TX used entry carries length 0. */
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
		bench_threads("virtio", &args, forward, fs);
		for (int t = 0; t < args.threads; t++) verify(fs[t]);
		return 0;
	}
	static struct forwarder f; /* static: large, and zeroed */
	port_init(&f.ports[0]);
	port_init(&f.ports[1]);
	bench_run("virtio", &args, forward, &f);
	verify(&f);
	return 0;
}
