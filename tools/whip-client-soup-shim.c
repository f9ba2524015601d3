// A preload for Debian 12's whip-client (simple-whip-client), used by the tests (Tests/PeerTestSupport/WHIPClient.swift)
// and tools/bench-whip.sh. whip-client links libsoup 2, and webrtcbin pulls in libsoup 3 through libnice and
// gupnp-igd; libsoup 3 aborts at load when it finds libsoup 2's `soup_uri_new` in the process ("libsoup2 symbols
// detected"). This hides that one probe, so the packaged client runs; UPnP (the only libsoup 3 user) finds nothing
// on a test host either way.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
typedef int gboolean;
typedef void *gpointer;
gboolean g_module_symbol(void *module, const char *name, gpointer *symbol) {
    static gboolean (*real)(void *, const char *, gpointer *);
    if (!real) real = (gboolean (*)(void *, const char *, gpointer *))dlsym(RTLD_NEXT, "g_module_symbol");
    if (strcmp(name, "soup_uri_new") == 0) { *symbol = 0; return 0; }
    return real(module, name, symbol);
}
