#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <stdlib.h>
#include <unistd.h>
#include <rte_eal.h>
#include "shim.h"

static void mnp_remove_runtime_dir(void)
{
	const char *dir = rte_eal_get_runtime_dir();
	if (dir != NULL && dir[0] != '\0')
		rmdir(dir);
}

int mnp_remove_runtime_dir_at_exit(void)
{
	return atexit(mnp_remove_runtime_dir);
}

uint16_t mnp_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t mnp_rx_burst_views(uint16_t port, uint16_t queue, struct rte_mbuf **pkts,
			    struct mnp_rx_view *views, uint16_t n)
{
	uint16_t got = rte_eth_rx_burst(port, queue, pkts, n);
	for (uint16_t i = 0; i < got; i++) {
		struct rte_mbuf *m = pkts[i];
		views[i].data = rte_pktmbuf_mtod(m, uint8_t *);
		views[i].len = rte_pktmbuf_pkt_len(m);
		if (m->nb_segs != 1)
			views[i].kind = MNP_VIEW_CHAINED;
		else if (!RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1)
			views[i].kind = MNP_VIEW_COPY;
		else
			views[i].kind = MNP_VIEW_LEND;
	}
	return got;
}

uint16_t mnp_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

int mnp_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(mp, pkts, n);
}

void mnp_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n)
{
	rte_pktmbuf_free_bulk(pkts, n);
}

int mnp_errno(void)
{
	return rte_errno;
}

unsigned int mnp_mempool_in_use(const struct rte_mempool *mp)
{
	return rte_mempool_in_use_count(mp);
}

void mnp_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

uint64_t mnp_rss_hf(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP;
}

unsigned int mnp_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n)
{
	return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned int mnp_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n)
{
	return rte_ring_dequeue_burst(r, objs, n, NULL);
}
