{
  "variables": {
    "have_xdp": "<!(test -f /usr/include/xdp/xsk.h && echo 1 || echo 0)",
    "rdkafka_include": "<!(node -p \"try { require('path').dirname(require.resolve('@confluentinc/kafka-javascript/package.json')) + '/deps/librdkafka/src' } catch { '' }\")"
  },
  "targets": [
    {
      "target_name": "otus_native",
      "sources": ["otus.cc", "afpacket.cc", "pcap.cc", "xdp.cc", "shm.cc", "sys.cc"],
      "conditions": [
        ["have_xdp==1", { "defines": ["OTUS_HAVE_XDP"], "libraries": ["-lxdp", "-lbpf"] }],
        ["rdkafka_include!=''", { "sources": ["kafka.cc"], "defines": ["OTUS_HAVE_KAFKA"], "cflags_cc": ["-isystem", "<(rdkafka_include)"], "libraries": ["-ldl"] }]
      ],
      "libraries": ["-lpcap"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
