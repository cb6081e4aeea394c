// Traffic source for bench/live-veth: sends the frames of a pcap over and over
// through an AF_PACKET socket with PACKET_QDISC_BYPASS and sendmmsg batches,
// as fast as one core allows, for a given number of seconds (or until
// SIGTERM). tcpreplay --topspeed does the same job more slowly, one send per
// frame. Prints one JSON line: frames sent, seconds.
//
//   veth_blast IFACE FILE.pcap SECONDS CPU   (CPU -1: no pinning)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s IFACE FILE.pcap SECONDS CPU\n", argv[0]);
    return 2;
  }
  int cpu = atoi(argv[4]);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
  }
  // The whole file, however long: a loop of only its first frames would be
  // another traffic mix (a file of calls starts with their setup).
  FILE *f = fopen(argv[2], "rb");
  if (!f) return perror(argv[2]), 1;
  uint8_t gh[24];
  uint32_t magic;
  if (fread(gh, 1, 24, f) != 24) return fprintf(stderr, "%s: short pcap header\n", argv[2]), 1;
  memcpy(&magic, gh, 4);
  if (magic != 0xa1b2c3d4 && magic != 0xa1b23c4d)
    return fprintf(stderr, "%s: not a little-endian pcap (the benchmark writes those)\n", argv[2]), 1;
  uint8_t **frames = NULL;
  size_t *lens = NULL;
  size_t nf = 0, cap = 0;
  uint8_t rh[16];
  while (fread(rh, 1, 16, f) == 16) {
    uint32_t incl;
    memcpy(&incl, rh + 8, 4);
    if (incl == 0 || incl > 65535) return fprintf(stderr, "%s: frame %zu: bad length %u\n", argv[2], nf + 1, incl), 1;
    if (nf == cap) {
      cap = cap ? cap * 2 : 4096;
      frames = realloc(frames, cap * sizeof *frames);
      lens = realloc(lens, cap * sizeof *lens);
      if (!frames || !lens) return perror("realloc"), 1;
    }
    frames[nf] = malloc(incl);
    if (!frames[nf]) return perror("malloc"), 1;
    if (fread(frames[nf], 1, incl, f) != incl) return fprintf(stderr, "%s: frame %zu truncated\n", argv[2], nf + 1), 1;
    lens[nf++] = incl;
  }
  fclose(f);
  if (nf == 0) return fprintf(stderr, "%s: no frames\n", argv[2]), 1;

  // Ends with the benchmark that started it: an orphan would spin on the vanished veth.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) return perror("socket"), 1;
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = 0;
  sll.sll_ifindex = (int)if_nametoindex(argv[1]);
  if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) return perror(argv[1]), 1;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  memset(msgs, 0, sizeof(msgs));
  double t0 = now(), limit = atof(argv[3]);
  uint64_t sent = 0, errors = 0;
  size_t j = 0;
  while (!stop) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = frames[j];
      iov[i].iov_len = lens[j];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      if (++j == nf) j = 0;
    }
    int r = sendmmsg(fd, msgs, BATCH, 0);
    if (r > 0) sent += (uint64_t)r;
    else errors++;
    if ((sent & 0xfff) < BATCH && now() - t0 >= limit) break;
  }
  double el = now() - t0;
  printf("{\"sent\":%llu,\"seconds\":%.6f,\"errors\":%llu,\"loop_frames\":%zu}\n", (unsigned long long)sent, el, (unsigned long long)errors, nf);
  return 0;
}
