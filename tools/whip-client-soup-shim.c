// A preload for Debian 12's whip-client (simple-whip-client), used by the tests (Tests/PeerTestSupport/WHIPClient.swift)
// and tools/bench-whip.sh. whip-client links libsoup 2, and webrtcbin pulls in libsoup 3 through libnice and
// gupnp-igd; libsoup 3 aborts at load when it finds libsoup 2's `soup_uri_new` in the process ("libsoup2 symbols
// detected"). This hides that one probe, so the packaged client starts.
//
// The probe is there for a reason: the two libraries register GObject types of the same names ("SoupSession",
// "SoupMessage", ...) and export functions of the same names, so the moment libsoup 3 runs, whichever thread
// registers a type second gets a broken one. libsoup 3's only user here is libnice's UPnP port mapping, which
// starts a GUPnP context (and its HTTP server) on a thread of its own while candidates are gathered, racing
// whip-client's own libsoup 2 requests: under load a client died ("double free or corruption") or connected and then
// sent no media, one run in three of the WHIP suites. So libnice gets no UPnP agent either: it takes a NULL one as
// "UPnP unavailable" and gathers host candidates only, which is all a test host has. libsoup 3 then never runs.
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
void *gupnp_simple_igd_thread_new(void) { return 0; }
