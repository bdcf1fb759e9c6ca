{
  "targets": [
    {
      "target_name": "kova_native",
      "sources": ["native/kova_native.c", "native/blake3.c"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
