{
  "targets": [
    {
      "target_name": "otus_native",
      "sources": ["otus.cc", "afpacket.cc", "pcap.cc", "shm.cc"],
      "libraries": ["-lpcap"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
