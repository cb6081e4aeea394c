// Baseline for bench/live-veth: the smallest sensible TPACKET_V3 reader in C.
// One AF_PACKET socket, an RX ring, poll() for readiness, walk every block the
// kernel retired to user space, touch each frame (sum its first byte and its
// length, so the loop cannot be optimised away), hand the block back.
// The same work per frame as Otus's driver minus decoding.
//
//   tpacket_v3_loop IFACE BLOCK_SIZE BLOCK_COUNT CPU   (CPU -1: no pinning)
// Prints "ready" once bound; SIGUSR2 marks the end of the warm-up; on
// SIGINT/SIGTERM prints one JSON line of counts and the CPU time used since
// "ready" and since the mark (getrusage), then exits.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop, mark;
static void on_signal(int sig) { (void)sig; stop = 1; }
static void on_mark(int sig) { (void)sig; mark = 1; }

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "tpacket_v3_loop: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s IFACE BLOCK_SIZE BLOCK_COUNT CPU\n", argv[0]);
    return 2;
  }
  unsigned bs = (unsigned)atoi(argv[2]), bn = (unsigned)atoi(argv[3]);
  int cpu = atoi(argv[4]);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) die("sched_setaffinity");
  }
  // Ends with the benchmark that started it: an orphan would spin on the vanished veth.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) die("socket");
  int v = TPACKET_V3;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) != 0) die("PACKET_VERSION");
  struct tpacket_req3 req = {0};
  req.tp_block_size = bs;
  req.tp_block_nr = bn;
  req.tp_frame_size = 2048;
  req.tp_frame_nr = (bs * bn) / 2048;
  req.tp_retire_blk_tov = 10;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0) die("PACKET_RX_RING");
  uint8_t *ring = mmap(NULL, (size_t)bs * bn, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (ring == MAP_FAILED) die("mmap");
  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)if_nametoindex(argv[1]);
  if (sll.sll_ifindex == 0) die(argv[1]);
  if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) die("bind");
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  struct sigaction sm = {0};
  sm.sa_handler = on_mark;
  sigaction(SIGUSR2, &sm, NULL);

  double c0 = cpu_seconds();
  printf("ready\n");
  fflush(stdout);
  uint64_t packets = 0, bytes = 0, blocks = 0, touch = 0;
  double mark_cpu = -1;
  uint64_t mark_packets = 0;
  unsigned cur = 0;
  struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLERR};
  while (!stop) {
    if (mark && mark_cpu < 0) {
      mark_cpu = cpu_seconds();
      mark_packets = packets;
    }
    struct tpacket_block_desc *bd = (struct tpacket_block_desc *)(ring + (size_t)cur * bs);
    if ((__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) {
      poll(&pfd, 1, 100);
      continue;
    }
    uint32_t n = bd->hdr.bh1.num_pkts;
    struct tpacket3_hdr *h = (struct tpacket3_hdr *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
    for (uint32_t i = 0; i < n; i++) {
      touch += ((uint8_t *)h)[h->tp_mac];
      bytes += h->tp_snaplen;
      h = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
    }
    packets += n;
    blocks++;
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    cur = (cur + 1) % bn;
  }
  double end = cpu_seconds(), used = end - c0;
  struct tpacket_stats_v3 st = {0};
  socklen_t len = sizeof(st);
  getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len);
  printf("{\"packets\":%llu,\"bytes\":%llu,\"blocks\":%llu,\"kernel_packets\":%u,\"kernel_drops\":%u,\"cpu_s\":%.6f,"
         "\"steady_packets\":%llu,\"steady_cpu_s\":%.6f,\"touch\":%llu}\n",
         (unsigned long long)packets, (unsigned long long)bytes, (unsigned long long)blocks, st.tp_packets, st.tp_drops, used,
         (unsigned long long)(mark_cpu < 0 ? 0 : packets - mark_packets), mark_cpu < 0 ? 0 : end - mark_cpu, (unsigned long long)touch);
  munmap(ring, (size_t)bs * bn);
  close(fd);
  return 0;
}
