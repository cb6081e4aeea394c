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
	"encoding/json"
	"fmt"
	"io"
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

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gopacket-anchor FILE [PACKETS]")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Frames are slices of the file, as Otus reads them in place.
	var frames [][]byte
	for {
		f, _, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		frames = append(frames, f)
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
