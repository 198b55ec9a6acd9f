/*
 * ixgbe-fwd.c - reference forwarder: ixy's ixgbe RX/TX ring code on an instant device.
 *
 * Two ports, A and B, each with one RX and one TX ring of 82599 advanced descriptors
 * (datasheet 7.1.6 receive, 7.2.3.2.4 transmit) and a fake BAR holding the tail registers.
 * Per loop iteration, for A->B and then B->A: the device completes up to `batch` RX
 * descriptors, the driver receives them, touches one byte of each frame, transmits them on
 * the other port, and the device completes every TX descriptor it was handed.
 *
 * Build: gcc -O2 -Wall -Wextra -o ixgbe-fwd ixgbe-fwd.c
 */
#include "common.h"

#define RING_SIZE 512u
#define RING_MASK (RING_SIZE - 1)

/* Tail registers of queue 0 in the 82599's 128 KiB BAR0. */
#define BAR_SIZE 0x20000u
#define IXGBE_RDT0 0x01018u
#define IXGBE_TDT0 0x06018u

/* RX write-back: status in word 2, length in the low half of word 3. */
#define RXD_STAT_DD 0x1u
#define RXD_STAT_EOP 0x2u
#define RXD_ERR_MASK 0x3B000000u /* the error bits in word 2; any set means a bad frame */

/* TX advanced data descriptor, word 2 (cmd_type_len) and word 3 (olinfo_status). */
#define TXD_DTYP_DATA 0x00300000u
#define TXD_DCMD_DEXT 0x20000000u
#define TXD_DCMD_RS 0x08000000u /* report status: the device writes DD back */
#define TXD_DCMD_IFCS 0x02000000u
#define TXD_DCMD_EOP 0x01000000u
#define TXD_PAYLEN_SHIFT 14
#define TXD_STAT_DD 0x1u

/* RS goes on every 32nd descriptor, so the driver cleans (and the device reports) 32 at a time. */
#define TX_CLEAN_BATCH 32u

struct rx_ring {
	volatile uint32_t *desc;              /* RING_SIZE descriptors of four 32-bit words */
	struct pkt_buf *bufs[RING_SIZE];      /* the buffer behind each descriptor */
	uint32_t rx_index;                    /* next descriptor the driver looks at */
	uint64_t errors;
};

struct tx_ring {
	volatile uint32_t *desc;
	struct pkt_buf *bufs[RING_SIZE];      /* valid for descriptors clean .. tail-1 */
	uint32_t clean;                       /* oldest descriptor not yet cleaned, a multiple of 32 */
	uint32_t tail;                        /* next descriptor the driver fills */
	uint64_t errors;
};

/* The instant device's own view: its head pointers, which a real NIC keeps in RDH/TDH. */
struct instant_device {
	uint32_t rx_head, tx_head;
};

struct port {
	volatile uint32_t *bar;               /* the fake register window */
	struct mempool *pool;                 /* RX buffers of this port */
	struct rx_ring rx;
	struct tx_ring tx;
	struct instant_device dev;
};

/* ---- registers ------------------------------------------------------------------------------ */

/*
 * The compiler barrier keeps the descriptor stores before the tail write, as ixy's set_reg32
 * does; on x86 stores are not reordered with each other, so that is all a real driver needs.
 */
static inline void reg_write(volatile uint32_t *bar, uint32_t offset, uint32_t value) {
	__asm__ volatile("" ::: "memory");
	bar[offset / 4] = value;
}

static inline uint32_t reg_read(volatile uint32_t *bar, uint32_t offset) {
	return bar[offset / 4];
}

/* ---- the driver ------------------------------------------------------------------------------ */

static inline void rx_desc_set_buf(volatile uint32_t *d, const struct pkt_buf *buf) {
	d[0] = (uint32_t)buf->buf_addr;
	d[1] = (uint32_t)(buf->buf_addr >> 32);
	d[2] = 0; /* header address 0; also clears DD for the next round */
	d[3] = 0;
}

static void port_init(struct port *p) {
	p->bar = dma_alloc(BAR_SIZE).virt;
	p->pool = mempool_create(POOL_ENTRIES);
	p->rx.desc = dma_alloc(RING_SIZE * 16).virt;
	p->tx.desc = dma_alloc(RING_SIZE * 16).virt;
	for (uint32_t i = 0; i < RING_SIZE; i++) {
		struct pkt_buf *buf = pkt_buf_alloc(p->pool);
		if (!buf) die("mempool too small to fill the RX ring");
		p->rx.bufs[i] = buf;
		rx_desc_set_buf(p->rx.desc + 4 * i, buf);
	}
	/* The device owns RDH .. RDT-1: all but one descriptor, so a full ring differs from an empty one. */
	reg_write(p->bar, IXGBE_RDT0, RING_SIZE - 1);
	reg_write(p->bar, IXGBE_TDT0, 0);
}

/* Noinline like a driver behind ixy's function pointers: the forwarder calls an API, not a macro. */
NOINLINE static uint32_t ixgbe_rx_batch(struct port *p, struct pkt_buf **bufs, uint32_t batch) {
	struct rx_ring *q = &p->rx;
	uint32_t idx = q->rx_index, n = 0;
	bool moved = false;
	while (n < batch) {
		volatile uint32_t *d = q->desc + 4 * idx;
		uint32_t status = d[2];
		if (!(status & RXD_STAT_DD)) break;
		uint32_t length = d[3] & 0xffff;
		struct pkt_buf *buf = q->bufs[idx];
		if ((status & (RXD_STAT_EOP | RXD_ERR_MASK)) == RXD_STAT_EOP && length > 0 && length <= MAX_FRAME) {
			struct pkt_buf *fresh = pkt_buf_alloc(p->pool);
			if (!fresh) break; /* leave the frame in the ring; it is picked up once buffers return */
			buf->size = length;
			bufs[n++] = buf;
			q->bufs[idx] = fresh;
			buf = fresh;
		} else {
			q->errors++; /* drop it: the descriptor keeps its buffer */
		}
		rx_desc_set_buf(d, buf);
		idx = (idx + 1) & RING_MASK;
		moved = true;
	}
	if (moved) {
		q->rx_index = idx;
		reg_write(p->bar, IXGBE_RDT0, (idx - 1) & RING_MASK);
	}
	return n;
}

NOINLINE static uint32_t ixgbe_tx_batch(struct port *p, struct pkt_buf **bufs, uint32_t count) {
	struct tx_ring *q = &p->tx;
	uint32_t clean = q->clean, tail = q->tail;

	/* Clean 32 at a time: DD on the 32nd (the one with RS) means the device is done with all 32. */
	while (((tail - clean) & RING_MASK) >= TX_CLEAN_BATCH) {
		if (!(q->desc[4 * (clean + TX_CLEAN_BATCH - 1) + 3] & TXD_STAT_DD)) break;
		for (uint32_t i = 0; i < TX_CLEAN_BATCH; i++) pkt_buf_free(q->bufs[clean + i]);
		clean = (clean + TX_CLEAN_BATCH) & RING_MASK;
	}
	q->clean = clean;

	/* Fill descriptors; one slot stays empty so that tail == clean means an empty ring. */
	uint32_t taken = 0, old_tail = tail;
	for (; taken < count && ((tail + 1) & RING_MASK) != clean; taken++) {
		struct pkt_buf *buf = bufs[taken];
		if (buf->size == 0 || buf->size > MAX_FRAME) {
			pkt_buf_free(buf); /* taken and dropped, so the caller must not free it again */
			q->errors++;
			continue;
		}
		uint32_t cmd = TXD_DTYP_DATA | TXD_DCMD_DEXT | TXD_DCMD_IFCS | TXD_DCMD_EOP | buf->size;
		if ((tail & (TX_CLEAN_BATCH - 1)) == TX_CLEAN_BATCH - 1) cmd |= TXD_DCMD_RS;
		volatile uint32_t *d = q->desc + 4 * tail;
		d[0] = (uint32_t)buf->buf_addr;
		d[1] = (uint32_t)(buf->buf_addr >> 32);
		d[2] = cmd;
		d[3] = buf->size << TXD_PAYLEN_SHIFT; /* also clears a stale DD */
		q->bufs[tail] = buf;
		tail = (tail + 1) & RING_MASK;
	}
	if (tail != old_tail) {
		q->tail = tail;
		reg_write(p->bar, IXGBE_TDT0, tail);
	}
	return taken;
}

/* ---- the instant device ---------------------------------------------------------------------- */

/* "Receives" a 60-byte frame into each of up to `batch` descriptors it owns. */
NOINLINE static void device_rx(struct port *p, uint32_t batch) {
	uint32_t rdt = reg_read(p->bar, IXGBE_RDT0), head = p->dev.rx_head;
	for (uint32_t i = 0; i < batch && head != rdt; i++) {
		volatile uint32_t *d = p->rx.desc + 4 * head;
		d[3] = FRAME_LEN;                  /* length before status, as a device must */
		d[2] = RXD_STAT_DD | RXD_STAT_EOP;
		head = (head + 1) & RING_MASK;
	}
	p->dev.rx_head = head;
}

/* "Sends" everything up to TDT, reporting DD where the driver asked for it. */
NOINLINE static void device_tx(struct port *p) {
	uint32_t tdt = reg_read(p->bar, IXGBE_TDT0), head = p->dev.tx_head;
	for (; head != tdt; head = (head + 1) & RING_MASK) {
		volatile uint32_t *d = p->tx.desc + 4 * head;
		if (d[2] & TXD_DCMD_RS) d[3] = TXD_STAT_DD;
	}
	p->dev.tx_head = head;
}

/* ---- the forwarder --------------------------------------------------------------------------- */

struct forwarder {
	struct port ports[2];
	uint64_t received; /* over all runs, for the final check */
};

static inline uint32_t forward_one_way(struct port *rx, struct port *tx, struct pkt_buf **bufs, uint32_t batch) {
	device_rx(rx, batch);
	uint32_t n = ixgbe_rx_batch(rx, bufs, batch);
	for (uint32_t i = 0; i < n; i++) bufs[i]->data[1]++;
	uint32_t sent = ixgbe_tx_batch(tx, bufs, n);
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

/* Every buffer is free, behind an RX descriptor, or on a TX ring between clean and tail. */
static void verify(struct forwarder *f) {
	struct census c;
	census_start(&c, f->ports[0].pool, f->ports[1].pool);
	census_add_free(&c);
	for (int i = 0; i < 2; i++) {
		struct port *p = &f->ports[i];
		for (uint32_t d = 0; d < RING_SIZE; d++) census_add(&c, p->rx.bufs[d]);
		for (uint32_t d = p->tx.clean; d != p->tx.tail; d = (d + 1) & RING_MASK) census_add(&c, p->tx.bufs[d]);
		if (p->rx.errors || p->tx.errors)
			die("verification failed: port %d counted %llu RX and %llu TX errors", i,
			    (unsigned long long)p->rx.errors, (unsigned long long)p->tx.errors);
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
		bench_threads("ixgbe", &args, forward, fs);
		for (int t = 0; t < args.threads; t++) verify(fs[t]);
		return 0;
	}
	static struct forwarder f; /* static: large, and zeroed */
	port_init(&f.ports[0]);
	port_init(&f.ports[1]);
	bench_run("ixgbe", &args, forward, &f);
	verify(&f);
	return 0;
}
