#!/usr/bin/env bash
# The SDK as a plugin author sees it: install into a temp prefix, build the
# template plugin and a harness test out of tree with nothing but
# pkg-config, then have jiwad load the plugin.
# Usage: test_sdk.sh BUILD_DIR SRC_DIR [EXTRA_CFLAGS]
set -euo pipefail
BUILD="$1" SRC="$2" XFLAGS="${3:-}"
T="$(mktemp -d "${TMPDIR:-/tmp}/jiwa-sdk-XXXXXX")"
trap 'rm -rf "$T"' EXIT
cmake --install "$BUILD" --prefix "$T/prefix" >/dev/null
export PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig:$T/prefix/lib/x86_64-linux-gnu/pkgconfig"
mkdir -p "$T/plugins" "$T/src"
cp "$SRC/plugins/template/template.c" "$T/src/hello.c"
cc -std=c11 -Wall -Wextra -Werror -shared $XFLAGS $(pkg-config --cflags jiwa-plugin) \
  "$T/src/hello.c" $(pkg-config --libs jiwa-plugin) -o "$T/plugins/hello.so"
cat >"$T/check.c" <<'C'
#include <jiwa/harness.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  jiwa_harness_t *h; char err[512];
  if (jiwa_harness_open(&h, argv[1], "{ prefix = 'om swastiastu,' }", err, sizeof err)) {
    fprintf(stderr, "open: %s\n", err); return 1; }
  jiwa_mp_writer_t w; jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1); jiwa_mp_put_kv_str(&w.pk, "name", "Ketut");
  jiwa_harness_reply_t r;
  if (jiwa_harness_ask(h, "template.hello", w.sbuf.data, w.sbuf.size, 1000, &r)) return 1;
  const char *t; size_t n;
  int ok = jiwa_msg_get_str(r.final, "text", &t, &n) == 0 &&
           n == strlen("om swastiastu, Ketut") && memcmp(t, "om swastiastu, Ketut", n) == 0;
  printf("%.*s\n", (int)n, t);
  jiwa_mp_writer_free(&w); jiwa_harness_reply_free(&r);
  return jiwa_harness_close(h) == 0 && ok ? 0 : 1;
}
C
cc -std=c11 -D_GNU_SOURCE $XFLAGS $(pkg-config --cflags jiwa-harness) "$T/check.c" \
  $(pkg-config --libs jiwa-harness) -o "$T/check"
"$T/check" "$T/plugins/hello.so"
cat >"$T/jiwa.lua" <<C
return { workers = 1, plugin_dir = "$T/plugins", state_dir = "$T/state",
         actors = { { name = "hello", plugin = "hello" } } }
C
"$BUILD/jiwad" --check -c "$T/jiwa.lua"
echo "1 passed, 0 failed"
