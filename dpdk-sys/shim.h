/* DPDK's fast-path calls are static inline functions; these wrappers give
 * them linkable symbols. One call per burst, never per packet. */
#include <stdint.h>
struct rte_mbuf;
struct rte_mempool;
uint16_t mnp_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
/* What rx hands the pipeline for one mbuf: its data, and whether the
 * pipeline may use it in place (single segment, direct, not shared). */
struct mnp_rx_view {
	uint8_t *data;
	uint32_t len;
	/* MNP_VIEW_LEND: use in place; MNP_VIEW_COPY: shared or indirect, copy
	 * it; MNP_VIEW_CHAINED: more than one segment (refused as oversize). */
	uint32_t kind;
};
#define MNP_VIEW_LEND 0
#define MNP_VIEW_COPY 1
#define MNP_VIEW_CHAINED 2
/* rte_eth_rx_burst, and a view of each mbuf received (one call per burst). */
uint16_t mnp_rx_burst_views(uint16_t port, uint16_t queue, struct rte_mbuf **pkts,
			    struct mnp_rx_view *views, uint16_t n);
uint16_t mnp_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
int mnp_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned int n);
void mnp_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n);
int mnp_errno(void);
unsigned int mnp_mempool_in_use(const struct rte_mempool *mp);
void mnp_pktmbuf_free(struct rte_mbuf *m);
/* RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP (macros bindgen cannot evaluate). */
uint64_t mnp_rss_hf(void);
struct rte_ring;
unsigned int mnp_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int mnp_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);
/* Remove EAL's runtime directory (/var/run/dpdk/<prefix> as root) at process
 * exit if it is empty: EAL creates it even with --no-shconf and never removes
 * it. Register before rte_eal_init so it runs after DPDK's own exit handlers
 * (telemetry unlinks its socket there). rmdir never removes a non-empty one. */
int mnp_remove_runtime_dir_at_exit(void);
