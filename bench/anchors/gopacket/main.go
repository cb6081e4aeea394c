// The gopacket anchor for bench/run: gopacket's DecodingLayerParser
// (Ethernet, Dot1Q, IPv4, IPv6, UDP, TCP, RTP-free payload) over every frame
// of a pcap held in memory, in a loop, as bench/decode.ts does for Otus.
// Prints one JSON line: packets, CPU seconds (this process's user + system),
// packets per CPU-second.
//
//	gopacket-anchor FILE [PACKETS]
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// mapFile maps the file read-only, as Otus maps a capture (native/otus.cc,
// mapFile): both then read the same page-cache pages, however the kernel
// laid them out (a copy into fresh heap memory measured differently).
func mapFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < 24 {
		return nil, fmt.Errorf("%s: not a pcap file (%d bytes)", path, st.Size())
	}
	return syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gopacket-anchor FILE [PACKETS]")
		os.Exit(2)
	}
	data, err := mapFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// pcapgo checks the file header; the frames are then sliced from the file
	// in place, as Otus reads them. (pcapgo's ZeroCopyReadPacketData returns
	// its one reused buffer each time: every frame kept from it would be the
	// last one read, and always in cache.)
	if _, err := pcapgo.NewReader(bytes.NewReader(data)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if m := binary.LittleEndian.Uint32(data); m != 0xa1b2c3d4 && m != 0xa1b23c4d {
		order = binary.BigEndian
	}
	var frames [][]byte
	for off := 24; off+16 <= len(data); {
		n := int(order.Uint32(data[off+8:]))
		if n > len(data)-off-16 {
			fmt.Fprintf(os.Stderr, "truncated record at byte %d\n", off)
			os.Exit(2)
		}
		frames = append(frames, data[off+16:off+16+n])
		off += 16 + n
	}
	want := len(frames) * 10
	if len(os.Args) > 2 {
		want, _ = strconv.Atoi(os.Args[2])
	}
	var eth layers.Ethernet
	var dot1q layers.Dot1Q
	var ip4 layers.IPv4
	var ip6 layers.IPv6
	var udp layers.UDP
	var tcp layers.TCP
	var payload gopacket.Payload
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &udp, &tcp, &payload)
	p.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	sink := 0
	// One pass to warm up, then the measured passes.
	for _, f := range frames {
		p.DecodeLayers(f, &decoded)
	}
	t0 := cpuSeconds()
	n := 0
	for n < want {
		for _, f := range frames {
			p.DecodeLayers(f, &decoded)
			sink += len(decoded) + int(udp.DstPort)
		}
		n += len(frames)
	}
	cpu := cpuSeconds() - t0
	out, _ := json.Marshal(map[string]any{"packets": n, "cpu_s": cpu, "packets_per_cpu_s": float64(n) / cpu, "frames": len(frames), "checksum": sink})
	fmt.Println(string(out))
}
