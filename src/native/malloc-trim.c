/*
 * glibc's malloc_trim(0) for Node: the heap trimmer (src/cli/heap-trim.ts)
 * calls it once the plugin is quiet after a burst of calls.
 *
 * Why: glibc gives memory back to the system on its own only from the top of
 * its heap. Under load, memory that is only needed for a while (V8's compiler
 * zones, HTTP/2 frames, buffers) is freed in the middle of the heap, below
 * something that stays, and glibc keeps those pages resident for good: after
 * 20,000 Probes at concurrency 64, 6 MiB of the node plugin's 9 MiB main heap
 * were free and still resident. malloc_trim(0) hands every whole free page back
 * (madvise), which nothing else does. Node has no binding to it and no
 * maintained package offers one, so this is the whole binding: one function,
 * Node-API only, so one build serves every Node version from 20 on.
 *
 * Built by scripts/build.mjs into dist/malloc-trim.node where a C compiler and
 * glibc are present; without it the plugin runs and only V8's heap is trimmed.
 */
#include <features.h>
#ifndef __GLIBC__
#error "malloc_trim is glibc's"
#endif

#define NAPI_VERSION 8
#include <malloc.h>
#include <node_api.h>

/* trim(): true when glibc gave memory back to the system. */
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value released;
  if (napi_get_boolean(env, malloc_trim(0) != 0, &released) != napi_ok) return NULL;
  return released;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
